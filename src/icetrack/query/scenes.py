"""Step 1: find the scenes over a glacier in a STAC catalogue.

Static catalogues (the demo, a user's local files) and STAC APIs go through the same
path: items are listed (pystac) or searched (pystac-client: POST, paginated, retried on
429/5xx), filtered by footprint, date, collection and platform, then each scene's cloud
fraction *over the glacier* is measured from its cloud band (classes such as SCL, or bit
flags such as QA_PIXEL) read only inside the glacier window.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from typing import Iterable

import numpy as np
import pandas as pd
import rasterio
from rasterio.features import geometry_mask
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from icetrack.access import sources
from icetrack.access.download import stac_file_info
from icetrack.common.grid import reproject_geometry
from icetrack.common.rasters import covering_window

log = logging.getLogger(__name__)

# Source types read as a static catalogue: the demo's, a user's own, or one the
# local_catalog rule writes for local files.
STATIC_KINDS = ("stac_static", "demo", "local_files")
# Local files become items with these assets (see local_files.py); a cloud mask is 1 = cloud.
LOCAL_ASSETS = {"band_asset": "image", "cloud_asset": "cloud", "cloud_classes": [1]}

SCENE_COLUMNS = [
    "id", "datetime", "date", "collection", "platform", "orbit", "tile", "crs",
    "cloud_cover_tile_pct", "cloud_fraction_glacier", "glacier_observed_fraction", "scale", "offset",
    "href", "cloud_href",
    "size_bytes", "checksum",  # STAC file:size, file:checksum of the band asset (verified in fetch.mode: download)
]


def resolved_source(source: dict) -> dict:
    """``source`` with its preset, or the asset names implied by its type, filled in."""
    if source["type"] == "local_files":
        return {**source, **LOCAL_ASSETS}
    return sources.resolve_source(source)


def iter_items(source: dict, outline: BaseGeometry, start: date, end: date) -> Iterable:
    """STAC items of ``source`` whose footprint meets ``outline`` between ``start`` and ``end``."""
    kind = source["type"]
    collections = source.get("collections") or None
    if kind in STATIC_KINDS:
        import pystac

        catalog = pystac.Catalog.from_file(source["catalog"])
        for item in catalog.get_items(recursive=True):
            if collections and item.collection_id not in collections:
                continue
            if item.geometry and not shape(item.geometry).intersects(outline):
                continue
            if item.datetime is None or not (start <= item.datetime.date() <= end):
                continue
            if not sources.platform_matches(item.properties.get("platform", ""), source.get("platforms")):
                continue
            yield item
    elif kind == "stac_api":
        from pystac_client.exceptions import APIError

        try:
            search = sources.stac_client(source).search(
                method="POST", collections=collections, intersects=mapping(outline),
                datetime=f"{start.isoformat()}/{end.isoformat()}", limit=source.get("page_size", 100),
            )
            for item in search.items():  # pystac-client follows the "next" links page by page
                if sources.platform_matches(item.properties.get("platform", ""), source.get("platforms")):
                    yield item
        except APIError as error:  # retries exhausted, or an answer that is not STAC
            raise QueryError(f"source url = {source['url']!r}: the STAC API search failed "
                             f"(after up to {source.get('max_retries', 5)} retries): {_reason(error)}") from None
    else:
        raise ValueError(f"source.type {kind!r} is not queryable; expected 'stac_static' or 'stac_api'")


class QueryError(RuntimeError):
    """A STAC search that could not be completed; the message names the API and the reason."""


def _reason(error: Exception) -> str:
    """The useful part of a requests/urllib3 error: 'too many 503 error responses', 'Connection refused'…"""
    text = str(error)
    m = re.search(r"ResponseError\('([^']+)'\)", text) or re.search(r"(\[Errno \d+\] [^\"')]+)", text)
    return m.group(1) if m else text.splitlines()[0][:200]


def cloud_over_glacier(cloud_href: str, outline: BaseGeometry, cloud_classes: Iterable[int] | dict) -> tuple[float, float]:
    """(cloudy fraction of the observed glacier pixels, observed fraction of the glacier).

    ``cloud_classes`` is a list of classes, or a rule of :func:`icetrack.access.sources.cloud_rule`
    (classes or QA bit flags; fill-flagged pixels count as not observed). Only the window
    around the outline is read from the cloud band.
    """
    rule = cloud_classes if isinstance(cloud_classes, dict) else {"classes": list(cloud_classes)}
    with rasterio.open(cloud_href) as src:
        local = reproject_geometry(outline, "EPSG:4326", src.crs)
        window = covering_window(local.bounds, src.transform)
        try:
            window = window.intersection(rasterio.windows.Window(0, 0, src.width, src.height))
        except rasterio.errors.WindowError:  # footprint meets the outline, the raster's data extent does not
            return 1.0, 0.0
        classes = src.read(1, window=window)
        inside = ~geometry_mask([mapping(local)], classes.shape, src.window_transform(window))
        nodata = src.nodata if src.nodata is not None else 0
    observed = inside & (classes != nodata) & ~sources.fill_pixels(classes, rule)
    n_inside, n_obs = int(inside.sum()), int(observed.sum())
    if n_obs == 0:
        return 1.0, 0.0
    cloudy = observed & sources.cloudy_pixels(classes, rule)
    return float(cloudy.sum()) / n_obs, n_obs / max(n_inside, 1)


def _orbit(item) -> str:
    """The item's orbit as a plain number: Sentinel-2 relative orbit (``sat:relative_orbit`` or the
    ``_R###_`` of ``s2:product_uri``), Landsat WRS-2 path. Same number = same viewing geometry."""
    p = item.properties
    value = next((p[key] for key in ("sat:relative_orbit", "landsat:wrs_path") if key in p), None)
    if value is None:
        m = re.search(r"_R(\d{3})_", str(p.get("s2:product_uri", "")))
        value = m.group(1) if m else ""
    return str(int(value)) if str(value).isdigit() else str(value)


def _tile(item) -> str:
    """The item's tile: MGRS ``grid:code`` (Sentinel-2) or WRS-2 path/row (Landsat)."""
    p = item.properties
    if "grid:code" in p:
        return str(p["grid:code"])
    if "landsat:wrs_path" in p:
        return f"{int(p['landsat:wrs_path']):03d}/{int(p.get('landsat:wrs_row', 0)):03d}"
    return str(p.get("s2:mgrs_tile", ""))


def _crs(item) -> str:
    p = item.properties
    if "proj:code" in p:
        return str(p["proj:code"])
    return f"EPSG:{p['proj:epsg']}" if p.get("proj:epsg") else ""


def query_scenes(source: dict, outline: BaseGeometry, start: date, end: date, fetch: dict | None = None) -> pd.DataFrame:
    """The scene table of a glacier: one row per item, sorted by time. ``fetch``: the network
    settings (retries, timeouts, token) for reading the cloud bands (:mod:`icetrack.access.http`)."""
    source = resolved_source(source)
    band, cloud_band = source["band_asset"], source.get("cloud_asset")
    rule = sources.cloud_rule(source)
    rows, incomplete = [], []
    with sources.reading(source, fetch):
        for item in iter_items(source, outline, start, end):
            if band not in item.assets:  # archives publish some items without all assets (earth-search#36)
                incomplete.append(f"item {item.id} has no asset {band!r} (source.band_asset); it has {sorted(item.assets)}")
                log.warning("skipped: %s", incomplete[-1])
                continue
            href = sources.asset_href(item.assets[band], source)
            cloud_href = (sources.asset_href(item.assets[cloud_band], source)
                          if cloud_band and cloud_band in item.assets else "")
            tile_cloud = float(item.properties.get("eo:cloud_cover", np.nan))
            if cloud_href:
                readable = sources.gdal_href(cloud_href, source, item.collection_id or "")
                frac, observed = cloud_over_glacier(readable, outline, rule)
            else:  # no cloud band: the tile's figure is the best we know
                frac, observed = (tile_cloud / 100 if np.isfinite(tile_cloud) else 0.0), 1.0
            # The item's own DN scale/offset (raster:bands), else the source's: recorded per scene
            # because they change with the processing baseline (Sentinel-2 04.00 added −0.1).
            scale, offset = sources.asset_scale_offset(item.assets[band])
            size_bytes, checksum = stac_file_info(item.assets[band].extra_fields)
            dt: datetime = item.datetime
            rows.append(dict(
                id=item.id, datetime=dt.isoformat(), date=dt.strftime("%Y%m%d"), collection=item.collection_id or "",
                platform=item.properties.get("platform", ""), orbit=_orbit(item), tile=_tile(item), crs=_crs(item),
                cloud_cover_tile_pct=tile_cloud, cloud_fraction_glacier=round(frac, 4),
                glacier_observed_fraction=round(observed, 4),
                scale=source.get("scale", 1.0) if scale is None else scale,
                offset=source.get("offset", 0.0) if offset is None else offset,
                href=href, cloud_href=cloud_href, size_bytes=size_bytes or "", checksum=checksum or "",
            ))
    if incomplete and not rows:  # no item has the band: the band name is wrong, not the archive
        raise KeyError(incomplete[0])
    return pd.DataFrame(rows, columns=SCENE_COLUMNS).sort_values(["datetime", "id"]).reset_index(drop=True)
