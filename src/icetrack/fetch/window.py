"""Step 2: read only the glacier window of each scene and reproject it onto the common grid.

Remote COGs are read through GDAL's HTTP range requests (``fetch.mode: window``, the
default): only the full-resolution blocks that cover the window are fetched, with the
retry, timeout and caching settings of :func:`icetrack.access.http.gdal_options`. With
``fetch.mode: download`` each remote file is first copied whole into the download
cache (:mod:`icetrack.access.download`) and read locally. Scenes of one date are mosaicked
(first valid pixel wins), and pixels whose classification is cloud become NaN.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Sequence
from urllib.parse import urlsplit

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window

from icetrack.access.clouds import cloudy_pixels, fill_pixels
from icetrack.access.download import download, http_status
from icetrack.common.grid import Grid
from icetrack.access.http import NetworkError, check_url, forget_cached_blocks, gdal_options, is_remote, redact_urls, settings, shown
from icetrack.common.rasters import covering_window


log = logging.getLogger(__name__)
NO_RANGES = "Range downloading not supported"  # GDAL's words for a server that answers 200 to a Range request


class FetchError(NetworkError):
    """A scene GDAL could not read (after its retries): one line naming the href and GDAL's reason."""


def _read_window(href: str, grid: Grid, margin_px: int = 4, fetch: dict | None = None):
    """(array, transform, crs, nodata) of the part of ``href`` that covers ``grid``, or None.

    GDAL retries HTTP statuses itself (GDAL_HTTP_MAX_RETRY) but not a body cut short
    ("got 389200 bytes, expected 395843", curl error 18): a remote read that fails is
    reopened and read again, ``fetch.max_retries`` times with doubling delays, after GDAL's
    cached blocks of that file are dropped (it would otherwise return the short block again).
    """
    s = settings(fetch)
    attempts = int(s["max_retries"]) + 1 if is_remote(href) else 1
    for attempt in range(attempts):
        try:
            with _gdal_warnings() as warnings, rasterio.open(href) as src:
                bounds = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
                win = covering_window(bounds, src.transform, margin_px)
                try:
                    win = win.intersection(Window(0, 0, src.width, src.height))
                except rasterio.errors.WindowError:
                    return None  # the scene does not reach the glacier
                data = src.read(1, window=win)
                return data, src.window_transform(win), src.crs, src.nodata
        except RasterioIOError as e:
            reason = _gdal_reason(e, href)
            if is_remote(href):
                reason = f"{_http_outcome(reason, warnings, href if attempt + 1 == attempts else '', s)} — GDAL: {reason}"
            if attempt + 1 == attempts or NO_RANGES in reason:  # a server without Range won't change
                retried = f" (after {attempt} retries)" if is_remote(href) else ""
                raise FetchError(f"cannot read {shown(href)}{retried}: {reason}") from None
            forget_cached_blocks(href)  # else GDAL would serve the short block again
            delay = min(float(s["retry_delay_s"]) * 2 ** attempt, float(s["max_retry_delay_s"]))
            log.warning("reading %s: %s; retry %d/%d in %.1f s", shown(href), reason, attempt + 1, attempts - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _gdal_warnings() -> Iterator[list[str]]:
    """GDAL's warnings (as rasterio logs them) while a file is read: they hold the HTTP codes."""
    handler = _Collect()
    loggers = [logging.getLogger(name) for name in ("rasterio._err", "rasterio._env")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def _http_outcome(reason: str, warnings: list[str], probe_href: str = "", fetch: dict | None = None) -> str:
    """What the server did, in a user's words: the last HTTP error status GDAL saw, a body cut
    short, or (when ``probe_href`` is given) what the server answers to one more request."""
    if NO_RANGES in reason:
        return "the server does not answer HTTP Range requests — read whole files with fetch.mode: download"
    codes = re.findall(r"(?:HTTP response code|HTTP error code|response_code)[:=]\s*(\d+)", " ".join([*warnings, reason]))
    last = next((c for c in reversed(codes) if int(c) >= 400), None)
    if last:
        return f"HTTP {last}"
    short = re.search(r"got (\d+) bytes, expected (\d+)", reason)
    if short and int(short.group(1)) > 0:
        return f"body cut short ({short.group(1)} of {short.group(2)} bytes)"
    if probe_href:
        now = http_status(probe_href, fetch)
        if not now.startswith("HTTP"):
            return f"no HTTP answer ({now})"
        if not now.startswith("HTTP 2"):
            return f"the server answers {now}"
    return "no complete HTTP answer (connection reset or refused, timeout, or a body cut short)"


def _gdal_reason(error: BaseException, href: str = "") -> str:
    """GDAL's messages on one line, innermost cause last (rasterio chains them: "Read failed. See
    previous exception" → "…got 0 bytes, expected 440781"), any URL shown without its query string."""
    messages: list[str] = []
    while error is not None and len(messages) < 6:
        text = " ".join(str(error).replace("See previous exception for details.", "").split()).rstrip(". ")
        if text and not any(text in m for m in messages):
            messages.append(text)
        error = error.__cause__ or error.__context__
    joined = ": ".join(messages) or "unknown GDAL error"
    query = urlsplit(href).query if "://" in href else ""
    if query:  # GDAL names the file with its query string: a signed URL's token
        joined = joined.replace("?" + query, "").replace(query, "<query>")
    return redact_urls(joined)[:400]


def local_or_cached(href: str, fetch: dict | None, size_bytes: int | None = None, checksum: str | None = None) -> str:
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


def reproject_to_grid(href: str, grid: Grid, resampling: Resampling, scale: float = 1.0, offset: float = 0.0,
                      fetch: dict | None = None) -> np.ndarray:
    """``href``'s first band on ``grid`` as float32, NaN outside the scene or at nodata (``fetch``: retries)."""
    out = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    got = _read_window(href, grid, fetch=fetch)
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


def fetch_date(hrefs: Iterable[str], cloud_hrefs: Iterable[str], grid: Grid, cloud: dict | Iterable[int],
               resampling: str = "cubic", scale: float = 1.0, offset: float = 0.0,
               progress: Callable[[int], None] | None = None, fetch: dict | None = None,
               sizes_bytes: Sequence[int | None] | None = None, checksums: Sequence[str | None] | None = None,
               scales: Sequence[float] | None = None, offsets: Sequence[float] | None = None) -> np.ndarray:
    """Mosaic of one date's scenes on ``grid``; clouds and gaps are NaN. ``progress(1)`` is called per scene read.

    ``cloud`` is the source's cloud rule (:func:`icetrack.access.clouds.cloud_rule`: classes, or
    QA bit flags with fill bits) or simply a list of cloud classes. DN → reflectance is
    ``DN · scale + offset``, per scene when ``scales``/``offsets`` are given (each item's own
    ``raster:bands``, which change with the Sentinel-2 processing baseline), else the source's.

    ``fetch`` is the ``fetch`` config block (mode, retries, HTTPS rule); ``sizes_bytes`` and
    ``checksums`` (STAC ``file:size``, ``file:checksum`` of each band href) are verified in
    download mode. Raises :class:`FetchError` / :class:`~icetrack.access.download.DownloadError`
    (one line naming the href) when a scene cannot be had.
    """
    hrefs, cloud_hrefs = list(hrefs), list(cloud_hrefs)
    sizes_bytes = list(sizes_bytes) if sizes_bytes else [None] * len(hrefs)
    checksums = list(checksums) if checksums else [None] * len(hrefs)
    scales = list(scales) if scales else [scale] * len(hrefs)
    offsets = list(offsets) if offsets else [offset] * len(hrefs)
    rule = cloud if isinstance(cloud, dict) else {"classes": list(cloud)}
    mosaic = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    with rasterio.Env(**gdal_options(fetch)):
        for href, cloud_href, size, checksum, dn_scale, dn_offset in zip(hrefs, cloud_hrefs, sizes_bytes, checksums,
                                                                        scales, offsets):
            image = reproject_to_grid(local_or_cached(href, fetch, size, checksum), grid, Resampling[resampling],
                                      dn_scale, dn_offset, fetch)
            if cloud_href:
                qa = reproject_to_grid(local_or_cached(cloud_href, fetch), grid, Resampling.nearest, fetch=fetch)
                seen = np.isfinite(qa)  # NaN: outside the cloud band (the image is NaN there too)
                values = np.where(seen, qa, 0)
                image[seen & (cloudy_pixels(values, rule) | fill_pixels(values, rule))] = np.nan
            fill = np.isnan(mosaic) & np.isfinite(image)
            mosaic[fill] = image[fill]
            if progress:
                progress(1)
    return mosaic
