"""Local GeoTIFFs as a static STAC catalogue, so they take the same query path as archives."""

from __future__ import annotations

from datetime import datetime, timezone
import os
import shutil
import tempfile
from pathlib import Path

import rasterio
from rasterio.warp import transform_bounds
from shapely.geometry import box, mapping



def write_local_catalog(files: list[dict], catalog_path: str | Path) -> None:
    """Write a self-contained catalogue with one item per file (assets ``image`` and, if
    given, ``cloud``), footprints from the rasters' own bounds and CRS."""
    import pystac

    catalog = pystac.Catalog(id="local-files", description="user-supplied images")
    for entry in files:
        path = Path(entry["path"])
        if not path.is_file():
            raise FileNotFoundError(f"sources.files: path = {str(path)!r} does not exist")
        with rasterio.open(path) as src:
            if src.crs is None:
                raise ValueError(f"sources.files: {path} has no CRS; icetrack needs georeferenced images")
            bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
            epsg = src.crs.to_epsg()
        day = datetime.fromisoformat(str(entry["date"])).replace(tzinfo=timezone.utc)
        item = pystac.Item(id=f"{path.stem}_{day:%Y%m%d}", geometry=mapping(box(*bounds)), bbox=list(bounds),
                           datetime=day, properties={"proj:epsg": epsg, "eo:cloud_cover": 0.0})
        item.add_asset("image", pystac.Asset(href=str(path.resolve()), roles=["data"]))
        if entry.get("cloud_mask"):
            item.add_asset("cloud", pystac.Asset(href=str(Path(entry["cloud_mask"]).resolve()), roles=["cloud"]))
        catalog.add_item(item)
    out = Path(catalog_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".catalog.") as tmp:
        # Absolute, with a trailing slash: pystac would take ".catalog.x" for a file name.
        catalog.normalize_hrefs(os.path.abspath(tmp) + os.sep)
        catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
        for child in Path(tmp).iterdir():  # item folders first, catalog.json (the output) last
            if child.name != "catalog.json":
                shutil.rmtree(out.parent / child.name, ignore_errors=True)
                child.rename(out.parent / child.name)
        os.replace(Path(tmp) / "catalog.json", out)
