"""Step 2: read only the glacier window of each scene and reproject it onto the common grid.

Remote COGs are read through GDAL's HTTP range requests: only the blocks that cover
the window are fetched. Scenes of one date are mosaicked (first valid pixel wins), and
pixels whose classification is cloud become NaN.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window

from .grid import Grid
from .rasters import covering_window


def _read_window(href: str, grid: Grid, margin_px: int = 4):
    """(array, transform, crs, nodata) of the part of ``href`` that covers ``grid``, or None."""
    with rasterio.open(href) as src:
        bounds = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
        win = covering_window(bounds, src.transform, margin_px)
        try:
            win = win.intersection(Window(0, 0, src.width, src.height))
        except rasterio.errors.WindowError:
            return None  # the scene does not reach the glacier
        data = src.read(1, window=win)
        return data, src.window_transform(win), src.crs, src.nodata


def reproject_to_grid(href: str, grid: Grid, resampling: Resampling, scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """``href``'s first band on ``grid`` as float32, NaN outside the scene or at nodata."""
    out = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    got = _read_window(href, grid)
    if got is None:
        return out
    data, transform, crs, nodata = got
    src = data.astype(np.float32)
    if nodata is not None:
        src[data == nodata] = np.nan
    del data  # full-scene windows: keep at most the source and the output in memory
    reproject(src, out, src_transform=transform, src_crs=crs, src_nodata=np.nan, dst_transform=grid.transform,
              dst_crs=grid.crs, dst_nodata=np.nan, resampling=resampling)
    del src
    out *= scale  # in place: no temporaries of the grid's size
    out += offset
    return out


def fetch_date(hrefs: Iterable[str], cloud_hrefs: Iterable[str], grid: Grid, cloud_classes: Iterable[int],
               resampling: str = "cubic", scale: float = 1.0, offset: float = 0.0,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Mosaic of one date's scenes on ``grid``; clouds and gaps are NaN. ``progress(1)`` is called per scene read."""
    mosaic = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    for href, cloud_href in zip(hrefs, cloud_hrefs):
        image = reproject_to_grid(href, grid, Resampling[resampling], scale, offset)
        if cloud_href:
            classes = reproject_to_grid(cloud_href, grid, Resampling.nearest)
            image[np.isin(classes, list(cloud_classes))] = np.nan
        fill = np.isnan(mosaic) & np.isfinite(image)
        mosaic[fill] = image[fill]
        if progress:
            progress(1)
    return mosaic
