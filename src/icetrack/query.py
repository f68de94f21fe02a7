"""Step 1: find the scenes over a glacier in a STAC catalogue.

Static catalogues (the demo, a user's local files) and STAC APIs go through the same
path: items are listed (pystac) or searched (pystac-client), filtered by footprint,
date and collection, then each scene's cloud fraction *over the glacier* is measured
from its cloud-classification band read only inside the glacier window.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Iterable

import numpy as np
import pandas as pd
import rasterio
from rasterio.features import geometry_mask
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from .download import stac_file_info
from .grid import reproject_geometry
from .rasters import covering_window

# Source types read as a static catalogue: the demo's, a user's own, or one the
# local_catalog rule writes for local files.
STATIC_KINDS = ("stac_static", "demo", "local_files")
# Local files become items with these assets (see local_files.py); a cloud mask is 1 = cloud.
LOCAL_ASSETS = {"band_asset": "image", "cloud_asset": "cloud", "cloud_classes": [1]}

SCENE_COLUMNS = [
    "id", "datetime", "date", "collection", "platform", "orbit", "crs",
    "cloud_cover_tile_pct", "cloud_fraction_glacier", "glacier_observed_fraction", "href", "cloud_href",
    "size_bytes", "checksum",  # STAC file:size, file:checksum of the band asset (verified in fetch.mode: download)
]


def resolved_source(source: dict) -> dict:
    """``source`` with the asset names implied by its type filled in."""
    return {**source, **LOCAL_ASSETS} if source["type"] == "local_files" else dict(source)


def iter_items(source: dict, outline: BaseGeometry, start: date, end: date) -> Iterable:
    """STAC items of ``source`` whose footprint meets ``outline`` between ``start`` and ``end``."""
    kind = source["type"]
    collections = source.get("collections") or None
    if kind in STATIC_KINDS:
        import pystac

        catalog = pystac.Catalog.from_file(source["catalog"])
        for item in catalog.get_all_items():
            if collections and item.collection_id not in collections:
                continue
            if item.geometry and not shape(item.geometry).intersects(outline):
                continue
            if item.datetime is None or not (start <= item.datetime.date() <= end):
                continue
            yield item
    elif kind == "stac_api":
        from pystac_client import Client

        client = Client.open(source["url"])
        search = client.search(
            collections=collections, intersects=mapping(outline),
            datetime=f"{start.isoformat()}/{end.isoformat()}", limit=source.get("page_size", 100),
        )
        yield from search.items()
    else:
        raise ValueError(f"source.type {kind!r} is not queryable; expected 'stac_static' or 'stac_api'")


def cloud_over_glacier(cloud_href: str, outline: BaseGeometry, cloud_classes: Iterable[int]) -> tuple[float, float]:
    """(cloudy fraction of the observed glacier pixels, observed fraction of the glacier).

    Only the window around the outline is read from the classification band.
    """
    with rasterio.open(cloud_href) as src:
        local = reproject_geometry(outline, "EPSG:4326", src.crs)
        window = covering_window(local.bounds, src.transform)
        window = window.intersection(rasterio.windows.Window(0, 0, src.width, src.height))
        classes = src.read(1, window=window)
        inside = ~geometry_mask([mapping(local)], classes.shape, src.window_transform(window))
        nodata = src.nodata if src.nodata is not None else 0
    observed = inside & (classes != nodata)
    n_inside, n_obs = int(inside.sum()), int(observed.sum())
    if n_obs == 0:
        return 1.0, 0.0
    cloudy = observed & np.isin(classes, list(cloud_classes))
    return float(cloudy.sum()) / n_obs, n_obs / max(n_inside, 1)


def _orbit(item) -> str:
    p = item.properties
    for key in ("sat:relative_orbit", "landsat:wrs_path"):
        if key in p:
            return str(p[key])
    m = re.search(r"_R(\d{3})_", str(p.get("s2:product_uri", "")))
    return m.group(1) if m else ""


def _crs(item) -> str:
    p = item.properties
    if "proj:code" in p:
        return str(p["proj:code"])
    return f"EPSG:{p['proj:epsg']}" if p.get("proj:epsg") else ""


def query_scenes(source: dict, outline: BaseGeometry, start: date, end: date) -> pd.DataFrame:
    """The scene table of a glacier: one row per item, sorted by time."""
    source = resolved_source(source)
    band, cloud_band = source["band_asset"], source.get("cloud_asset")
    rows = []
    for item in iter_items(source, outline, start, end):
        if band not in item.assets:
            raise KeyError(f"item {item.id} has no asset {band!r} (source.band_asset); it has {sorted(item.assets)}")
        href = item.assets[band].get_absolute_href()
        cloud_href = item.assets[cloud_band].get_absolute_href() if cloud_band and cloud_band in item.assets else ""
        tile_cloud = float(item.properties.get("eo:cloud_cover", np.nan))
        if cloud_href:
            frac, observed = cloud_over_glacier(cloud_href, outline, source.get("cloud_classes", [3, 8, 9, 10]))
        else:  # no classification band: the tile's figure is the best we know
            frac, observed = (tile_cloud / 100 if np.isfinite(tile_cloud) else 0.0), 1.0
        size_bytes, checksum = stac_file_info(item.assets[band].extra_fields)
        dt: datetime = item.datetime
        rows.append(dict(
            id=item.id, datetime=dt.isoformat(), date=dt.strftime("%Y%m%d"), collection=item.collection_id or "",
            platform=item.properties.get("platform", ""), orbit=_orbit(item), crs=_crs(item),
            cloud_cover_tile_pct=tile_cloud, cloud_fraction_glacier=round(frac, 4),
            glacier_observed_fraction=round(observed, 4), href=href, cloud_href=cloud_href,
            size_bytes=size_bytes or "", checksum=checksum or "",
        ))
    return pd.DataFrame(rows, columns=SCENE_COLUMNS).sort_values(["datetime", "id"]).reset_index(drop=True)
