"""Rule reference: the ITS_LIVE reference velocity (cube or mosaic) on the glacier's grid."""

from icetrack.common.atomic import atomic_path
from icetrack.common.grid import Grid
from icetrack.reference.itslive import build_reference, write_reference
from icetrack.common.provenance import redact
from icetrack.common.logs import start_logging
from icetrack.outputs.timeseries import parse_points

log = start_logging(snakemake)
dates = snakemake.params.dates
points = parse_points(snakemake.params.points, where=f"glaciers table, glacier {snakemake.wildcards.glacier}: points")
layer, series = build_reference(snakemake.params.reference, Grid.from_json(snakemake.input.grid), dates["start_date"],
                                dates["end_date"], points)
write_reference(layer, {name: snakemake.output[name] for name in ("vx", "vy", "v")})
with atomic_path(snakemake.output.points) as tmp:
    series.to_csv(tmp, index=False)
log.info("%s: %s; %d point values", layer.attrs["reference_product"], redact(layer.attrs["reference_url"]), len(series))
