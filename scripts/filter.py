import numpy as np

from icetrack.filters import apply_filter
from icetrack.rasters import read_band, write_geotiff
from icetrack.rule_io import start_logging

log = start_logging(snakemake)
cfg = snakemake.params.filter
image, transform, crs = read_band(snakemake.input[0])
filtered = apply_filter(image, cfg["method"], **cfg.get(cfg["method"], {}))
write_geotiff(snakemake.output[0], filtered, transform, crs, descriptions=[f"filtered ({cfg['method']})"])
log.info("filter %s applied; %.1f %% valid", cfg["method"], 100 * np.isfinite(filtered).mean())
