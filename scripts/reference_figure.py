"""Rule figure_reference: a pair's speed against the ITS_LIVE reference, figure and numbers."""

import json

import numpy as np
import rasterio
import xarray as xr

from icetrack.common.atomic import write_text_atomic
from icetrack.common.rasters import transform_of
from icetrack.outputs.figures import reference_comparison
from icetrack.reference.itslive import comparison_stats
from icetrack.common.rasters import raster_at_cells
from icetrack.common.logs import start_logging

log = start_logging(snakemake)
with xr.open_dataset(snakemake.input.velocity) as ds:
    x, y = ds["x"].values, ds["y"].values
    ours = np.hypot(ds["vx"].values, ds["vy"].values)  # speed of the masked, corrected map (m/yr)
    transform, epsg = transform_of(ds), ds["mapping"].attrs.get("spatial_epsg")
reference = raster_at_cells(snakemake.input.reference, x, y)  # the reference is on the glacier's (finer) grid
glacier = raster_at_cells(snakemake.input.masks, x, y, band=1) > 0.5
stable = raster_at_cells(snakemake.input.masks, x, y, band=2) > 0.5
with rasterio.open(snakemake.input.reference) as src:
    tags = src.tags()
stats = comparison_stats(ours, reference, glacier, stable)
stats["reference"] = {k: v for k, v in tags.items() if k.startswith("reference_")}
write_text_atomic(snakemake.output.stats, json.dumps(stats, indent=2))
reference_comparison(snakemake.output.figure, ours, reference, glacier, stable, transform, f"EPSG:{epsg}" if epsg else "map CRS", stats,
                     "ITS_LIVE", f"{snakemake.wildcards.glacier} {snakemake.wildcards.pair}: icetrack vs "
                     f"{tags.get('reference_product', 'ITS_LIVE')}")
g = stats["glacier"]
log.info("glacier: %d common points, median difference %s m/yr, NMAD %s m/yr", g["points"],
         g["median_difference_m_per_yr"], g["nmad_difference_m_per_yr"])
