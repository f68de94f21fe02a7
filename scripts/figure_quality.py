"""Rule figure_quality: a pair's quality figure (stable-ground histograms, reject shares, coverage)."""

import xarray as xr

from icetrack.common.rasters import transform_of
from icetrack.outputs.figures import quality_panel
from icetrack.postprocess.velocity import REASONS
from icetrack.common.rasters import raster_at_cells
from icetrack.common.logs import start_logging

log = start_logging(snakemake)
with xr.open_dataset(snakemake.input.velocity) as ds:
    x, y = ds["x"].values, ds["y"].values
    glacier = raster_at_cells(snakemake.input.masks, x, y, band=1) > 0.5
    stable = raster_at_cells(snakemake.input.masks, x, y, band=2) > 0.5
    quality_panel(snakemake.output[0], ds["vx"].values, ds["vy"].values, ds["reject_reason"].values,
                  ds["interp_mask"].values > 0, stable, glacier, REASONS, transform_of(ds),
                  ds["mapping"].attrs.get("spatial_epsg", "map CRS"),
                  f"{snakemake.wildcards.glacier} {snakemake.wildcards.pair}: quality")
log.info("quality figure written")
