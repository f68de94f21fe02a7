"""Step 2: read only the glacier window of each scene and reproject it onto the common grid.

Remote COGs are read through GDAL's HTTP range requests (``fetch.mode: window``, the
default): only the full-resolution blocks that cover the window are fetched, with the
retry, timeout and caching settings of :func:`icetrack.http.gdal_options`. With
``fetch.mode: download`` each remote file is first copied whole into the download
cache (:mod:`icetrack.download`) and read locally. Scenes of one date are mosaicked
(first valid pixel wins), and pixels whose classification is cloud become NaN.
"""

from __future__ import annotations

import re
import sys
from typing import Callable, Iterable, Sequence

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window

from .download import download
from .grid import Grid
from .http import NetworkError, check_url, gdal_options, is_remote, settings, shown
from .rasters import covering_window


class FetchError(NetworkError):
    """A scene GDAL could not read (after its retries): one line naming the href and GDAL's reason."""


def _read_window(href: str, grid: Grid, margin_px: int = 4):
    """(array, transform, crs, nodata) of the part of ``href`` that covers ``grid``, or None."""
    try:
        with rasterio.open(href) as src:
            bounds = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
            win = covering_window(bounds, src.transform, margin_px)
            try:
                win = win.intersection(Window(0, 0, src.width, src.height))
            except rasterio.errors.WindowError:
                return None  # the scene does not reach the glacier
            data = src.read(1, window=win)
            return data, src.window_transform(win), src.crs, src.nodata
    except RasterioIOError as e:
        raise FetchError(f"cannot read {shown(href)}: {_gdal_reason(e)}") from None


def _gdal_reason(error: Exception) -> str:
    """GDAL's message on one line, with any URL in it shown without its query string (tokens)."""
    text = " ".join(str(error).split())
    return re.sub(r"https?://[^\s,;'\"]+", lambda m: shown(m.group(0)), text)[:300]


def readable_href(href: str, fetch: dict | None, size_bytes: int | None = None, checksum: str | None = None) -> str:
    """What GDAL should open for ``href``: itself (mode ``window``, or a local file), or its
    verified copy in the download cache (mode ``download``). Refuses plain http unless
    ``fetch.allow_http``."""
    s = settings(fetch)
    check_url(href, s["allow_http"], "scene href")
    if s["mode"] != "download" or not is_remote(href):
        return href
    from tqdm import tqdm

    name = href.split("?")[0].rsplit("/", 1)[-1]
    with tqdm(total=size_bytes, desc=f"download {name}", unit="B", unit_scale=True, file=sys.stderr,
              mininterval=5.0, ascii=True) as bar:
        return str(download(href, s["cache_dir"], s, size_bytes=size_bytes, checksum=checksum, progress=bar.update))


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
    reproject(src, out, src_transform=transform, src_crs=crs, src_nodata=np.nan, dst_transform=grid.transform,
              dst_crs=grid.crs, dst_nodata=np.nan, resampling=resampling)
    return out * scale + offset


def fetch_date(hrefs: Iterable[str], cloud_hrefs: Iterable[str], grid: Grid, cloud_classes: Iterable[int],
               resampling: str = "cubic", scale: float = 1.0, offset: float = 0.0,
               progress: Callable[[int], None] | None = None, fetch: dict | None = None,
               sizes_bytes: Sequence[int | None] | None = None, checksums: Sequence[str | None] | None = None) -> np.ndarray:
    """Mosaic of one date's scenes on ``grid``; clouds and gaps are NaN. ``progress(1)`` is called per scene read.

    ``fetch`` is the ``fetch`` config block (mode, retries, HTTPS rule); ``sizes_bytes`` and
    ``checksums`` (STAC ``file:size``, ``file:checksum`` of each band href) are verified in
    download mode. Raises :class:`FetchError` / :class:`~icetrack.download.DownloadError`
    (one line naming the href) when a scene cannot be had.
    """
    hrefs, cloud_hrefs = list(hrefs), list(cloud_hrefs)
    sizes_bytes = list(sizes_bytes) if sizes_bytes else [None] * len(hrefs)
    checksums = list(checksums) if checksums else [None] * len(hrefs)
    mosaic = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    with rasterio.Env(**gdal_options(fetch)):
        for href, cloud_href, size, checksum in zip(hrefs, cloud_hrefs, sizes_bytes, checksums):
            image = reproject_to_grid(readable_href(href, fetch, size, checksum), grid, Resampling[resampling],
                                      scale, offset)
            if cloud_href:
                classes = reproject_to_grid(readable_href(cloud_href, fetch), grid, Resampling.nearest)
                image[np.isin(classes, list(cloud_classes))] = np.nan
            fill = np.isnan(mosaic) & np.isfinite(image)
            mosaic[fill] = image[fill]
            if progress:
                progress(1)
    return mosaic
