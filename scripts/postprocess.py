import json

from icetrack.common.atomic import write_text_atomic
from icetrack.track.offsets_file import read_offsets
from icetrack.postprocess.pair import postprocess_pair
from icetrack.postprocess.quality import quality_html
from icetrack.common.rasters import write_netcdf
from icetrack.common.logs import start_logging

log = start_logging(snakemake)
offsets = read_offsets(snakemake.input.offsets)
velocity_ds, quality = postprocess_pair(offsets, snakemake.input.masks, snakemake.params.postprocess,
                                        snakemake.params.get("provenance"))
write_netcdf(velocity_ds, snakemake.output.velocity)
write_text_atomic(snakemake.output.quality, json.dumps(quality, indent=2))
write_text_atomic(snakemake.output.quality_html, quality_html(quality))
static = quality["glaft"]["static_terrain"]
log.info("valid %.1f %% of points (%.1f %% over the glacier); rejected %s", 100 * quality["valid_fraction"],
         100 * quality["valid_fraction_glacier"], {k: round(v, 4) for k, v in quality["rejected_fraction"].items()})
log.info("stable ground: median offset %s px removed, NMAD %s px; GLAFT du, dv = %.3g, %.3g m/yr, "
         "incorrect matches %.1f %%", quality["stable_ground"]["median_offset_px"], quality["stable_ground"]["nmad_px"],
         static["delta_u_m_per_yr"], static["delta_v_m_per_yr"], 100 * static["incorrect_match_fraction"])
