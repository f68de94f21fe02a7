import json

from icetrack.atomic import write_text_atomic
from icetrack.offsets_io import read_offsets
from icetrack.pipeline import postprocess_pair
from icetrack.rule_io import start_logging

log = start_logging(snakemake)
offsets = read_offsets(snakemake.input.offsets)
velocity_ds, quality = postprocess_pair(offsets, snakemake.input.masks, snakemake.params.postprocess,
                                        snakemake.params.get("provenance"))
from icetrack.rasters import write_netcdf  # noqa: E402

write_netcdf(velocity_ds, snakemake.output.velocity)
write_text_atomic(snakemake.output.quality, json.dumps(quality, indent=2))
log.info("valid %.1f %% of points (%.1f %% over the glacier); stable-ground NMAD %s px",
         100 * quality["valid_fraction"], 100 * quality["valid_fraction_glacier"], quality["stable_ground"]["nmad_px"])
