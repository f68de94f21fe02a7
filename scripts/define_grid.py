import numpy as np

from icetrack.common.grid import grid_for_outline, load_outline, rasterize_lonlat
from icetrack.common.rasters import write_geotiff
from icetrack.common.logs import start_logging

log = start_logging(snakemake)
g, cfg = snakemake.params.glacier, snakemake.params.grid
outline = load_outline(g["outline"], g["bbox"] or None)
grid = grid_for_outline(outline, cfg["resolution_m"], cfg["buffer_m"], g["crs"] or None)
glacier = rasterize_lonlat(outline, grid)
stable = rasterize_lonlat(load_outline(g["stable_ground"], None), grid) if g["stable_ground"] else ~glacier
stable &= ~glacier
# uint8: a full Sentinel-2 grid's two float32 masks took 3 GB to write (docs/scaling.md)
write_geotiff(snakemake.output.masks, [glacier.astype(np.uint8), stable.astype(np.uint8)], grid.transform, grid.crs,
              descriptions=["glacier (1 = ice)", "stable ground (1 = rock)"], dtype="uint8")
grid.to_json(snakemake.output.grid)
log.info("grid %s: %d×%d px at %g m; glacier %d px, stable %d px", grid.crs, grid.width, grid.height,
         grid.resolution_m, glacier.sum(), stable.sum())
