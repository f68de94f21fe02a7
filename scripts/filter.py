"""Rule filter_scene: one date's scene through the configured texture filter (NaN stays NaN)."""

import numpy as np

from icetrack.filter.texture import apply_filter, band_descriptions
from icetrack.common.rasters import read_band, write_geotiff
from icetrack.common.logs import start_logging

log = start_logging(snakemake)
cfg = snakemake.params.filter
image, transform, crs = read_band(snakemake.input[0])
filtered = apply_filter(image, cfg["method"], **cfg.get(cfg["method"], {}))
bands = list(filtered) if filtered.ndim == 3 else [filtered]  # orientation: (cos, sin) as two bands
write_geotiff(snakemake.output[0], bands, transform, crs, descriptions=band_descriptions(cfg["method"]),
              tags={"filter": cfg["method"], "filter_parameters": cfg.get(cfg["method"], {})})
log.info("filter %s applied: %d band(s), %.1f %% valid", cfg["method"], len(bands), 100 * np.isfinite(bands[0]).mean())
