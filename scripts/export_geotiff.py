"""Rule export_geotiff: a pair's velocity.nc as Cloud-Optimised GeoTIFFs (vx, vy, v, v_error; m/yr)."""

import xarray as xr

from icetrack.outputs.geotiff import export_geotiffs
from icetrack.common.logs import start_logging

log = start_logging(snakemake)
with xr.open_dataset(snakemake.input[0]) as ds:
    export_geotiffs(ds, dict(snakemake.output))
log.info("GeoTIFFs written: %s", list(snakemake.output))
