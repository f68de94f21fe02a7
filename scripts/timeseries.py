import xarray as xr

from icetrack.common.atomic import atomic_path
from icetrack.outputs.figures import timeseries_plot
from icetrack.common.logs import start_logging
from icetrack.outputs.timeseries import attach_reference, parse_points, read_reference, sample_cube

log = start_logging(snakemake)
points = parse_points(snakemake.params.points, where=f"glaciers table, glacier {snakemake.wildcards.glacier}: points")
with xr.open_dataset(snakemake.input.cube) as cube:
    series = sample_cube(cube, points)
reference = read_reference(snakemake.input.get("reference"), points)
if reference is not None:
    series = attach_reference(series, reference)  # reference_v, reference_v_error, reference_count beside ours
with atomic_path(snakemake.output.csv) as tmp:
    series.to_csv(tmp, index=False)
timeseries_plot(snakemake.output.plot, series, reference, f"{snakemake.wildcards.glacier}: speed at points of interest")
log.info("time series at %d points x %d pairs%s", len(points), len(series) // max(len(points), 1),
         " with reference" if reference is not None else "")
