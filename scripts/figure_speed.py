"""Rule figure_speed: a pair's speed map with flow arrows over the reference scene."""

import xarray as xr

from icetrack.common.rasters import transform_of
from icetrack.outputs.figures import speed_map
from icetrack.common.rasters import read_band
from icetrack.common.logs import start_logging

log = start_logging(snakemake)
background, bg_transform, crs = read_band(snakemake.input.ref)
with xr.open_dataset(snakemake.input.velocity) as ds:
    speed_map(snakemake.output[0], background, bg_transform, ds["vx"].values, ds["vy"].values, transform_of(ds), crs,
              f"{snakemake.wildcards.glacier} {snakemake.wildcards.pair}: surface speed")
log.info("figure written")
