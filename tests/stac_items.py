"""STAC items in the real services' layouts, for the loopback STAC API of the tests.

The layouts follow published items: Earth Search v1 Sentinel-2 L2A (``sentinel-2-c1-l2a``:
assets ``nir``/``red`` 10 m and ``scl`` 20 m with ``raster:bands`` nodata/scale/offset,
``proj:*`` per asset, ``grid:code``, ``s2:product_uri`` holding the relative orbit
``_R###_``), the USGS Landsat STAC server Collection 2 Level-1 (``landsat-c2l1``: asset
``pan`` = B8 and ``qa_pixel`` with an https href and the requester-pays
``alternate.s3.href``, ``landsat:wrs_path``/``wrs_row`` as zero-padded strings,
``platform`` ``LANDSAT_8``), and Planetary Computer Landsat Collection 2 Level-2
(``landsat-c2-l2``: ``red``/``qa_pixel`` on Azure blob storage, scale 2.75e-5, offset −0.2).
Only the fields icetrack or a user would look at are filled; hrefs point at files the
tests write and serve.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
from affine import Affine
from shapely.geometry import box, mapping

from icetrack.common.grid import reproject_geometry

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
USGS_COG = "image/vnd.stac.geotiff; cloud-optimized=true"


def write_cog(path: Path, data: np.ndarray, transform: Affine, crs: str, nodata, compress: str = "deflate") -> Path:
    """A tiled GeoTIFF with overviews laid out as a COG (GDAL's COG driver)."""
    from rasterio.io import MemoryFile
    import rasterio.shutil

    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype, crs=crs,
                   transform=transform, nodata=nodata)
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data, 1)
        rasterio.shutil.copy(mem.name, path, driver="COG", blocksize=256, compress=compress, overview_resampling="nearest")
    return path


def footprint_wgs84(transform: Affine, shape: tuple[int, int], crs: str):
    """The raster's footprint as a WGS 84 polygon."""
    x0, y0 = transform @ (0, 0)
    x1, y1 = transform @ (shape[1], shape[0])
    return reproject_geometry(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), crs, "EPSG:4326")


def _proj(transform: Affine, shape: tuple[int, int]) -> dict:
    return {"proj:shape": list(shape), "proj:transform": list(transform)[:6]}


def earth_search_s2_item(scene_id: str, when: datetime, *, epsg: int, nir: tuple[str, Affine, tuple[int, int]],
                         scl: tuple[str, Affine, tuple[int, int]], cloud_cover: float, orbit: int = 96,
                         tile: str = "18FXK", collection: str = "sentinel-2-c1-l2a", baseline: str = "05.10") -> dict:
    """An Earth Search v1 Sentinel-2 L2A item; ``nir``/``scl`` are (href, transform, shape)."""
    footprint = footprint_wgs84(nir[1], nir[2], f"EPSG:{epsg}")
    stamp = when.strftime("%Y%m%dT%H%M%S")
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": scene_id, "collection": collection,
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
        "geometry": mapping(footprint), "bbox": list(footprint.bounds),
        "properties": {
            "datetime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "platform": "sentinel-2a",
            "constellation": "sentinel-2", "instruments": ["msi"], "eo:cloud_cover": cloud_cover,
            "proj:epsg": epsg, "mgrs:utm_zone": int(tile[:2]), "mgrs:latitude_band": tile[2],
            "mgrs:grid_square": tile[3:], "grid:code": f"MGRS-{tile}",
            "s2:processing_baseline": baseline, "s2:product_type": "S2MSI2A",
            "s2:product_uri": f"S2A_MSIL2A_{stamp}_N{baseline.replace('.', '')}_R{orbit:03d}_T{tile}_{stamp}.SAFE",
            "s2:snow_ice_percentage": 40.0, "earthsearch:boa_offset_applied": True,
        },
        "links": [],
        "assets": {
            "nir": {"href": nir[0], "type": COG, "title": "NIR 1 (band 8) - 10m", "gsd": 10,
                    "eo:bands": [{"name": "nir", "common_name": "nir", "center_wavelength": 0.842}],
                    **_proj(nir[1], nir[2]),
                    "raster:bands": [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                                      "spatial_resolution": 10, "scale": 0.0001, "offset": -0.1}],
                    "roles": ["data", "reflectance"]},
            "scl": {"href": scl[0], "type": COG, "title": "Scene classification map (SCL)", **_proj(scl[1], scl[2]),
                    "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
                    "roles": ["data", "reflectance"]},
        },
    }


def usgs_landsat_c2l1_item(scene_id: str, when: datetime, *, epsg: int, path: int, row: int,
                           pan: tuple[str, str, Affine, tuple[int, int]], qa: tuple[str, str, Affine, tuple[int, int]],
                           cloud_cover: float, platform: str = "LANDSAT_8") -> dict:
    """A USGS ``landsat-c2l1`` item; ``pan``/``qa`` are (https href, s3 href, transform, shape)."""
    footprint = footprint_wgs84(pan[2], pan[3], f"EPSG:{epsg}")

    def asset(href, s3, transform, shape, title, extra):
        return {"href": href, "type": USGS_COG, "title": title, "roles": ["data"], **_proj(transform, shape),
                "alternate": {"s3": {"storage:platform": "AWS", "storage:requester_pays": True, "href": s3}}, **extra}

    return {
        "type": "Feature", "stac_version": "1.0.0", "id": scene_id, "collection": "landsat-c2l1",
        "geometry": mapping(footprint), "bbox": list(footprint.bounds),
        "properties": {
            "datetime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "platform": platform, "instruments": ["OLI", "TIRS"],
            "eo:cloud_cover": cloud_cover, "landsat:cloud_cover_land": cloud_cover,
            "landsat:wrs_path": f"{path:03d}", "landsat:wrs_row": f"{row:03d}", "landsat:collection_category": "T1",
            "landsat:collection_number": "02", "landsat:correction": "L1TP", "proj:epsg": epsg,
        },
        "links": [],
        "assets": {
            "pan": asset(*pan, "Panchromatic Band (B8)",
                         {"eo:bands": [{"name": "B8", "common_name": "pan", "gsd": 15, "center_wavelength": 0.59}]}),
            "qa_pixel": asset(*qa, "Pixel Quality Assessment Band", {"classification:bitfields": [
                {"name": "fill", "offset": 0, "length": 1}, {"name": "dilated_cloud", "offset": 1, "length": 1},
                {"name": "cirrus", "offset": 2, "length": 1}, {"name": "cloud", "offset": 3, "length": 1},
                {"name": "cloud_shadow", "offset": 4, "length": 1}, {"name": "snow", "offset": 5, "length": 1}]}),
        },
    }


def planetary_computer_landsat_item(scene_id: str, when: datetime, *, epsg: int, path: int, row: int,
                                    red: tuple[str, Affine, tuple[int, int]], qa: tuple[str, Affine, tuple[int, int]],
                                    cloud_cover: float, platform: str = "landsat-8") -> dict:
    """A Planetary Computer ``landsat-c2-l2`` item; ``red``/``qa`` are (href, transform, shape)."""
    footprint = footprint_wgs84(red[1], red[2], f"EPSG:{epsg}")
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": scene_id, "collection": "landsat-c2-l2",
        "geometry": mapping(footprint), "bbox": list(footprint.bounds),
        "properties": {
            "datetime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "platform": platform, "instruments": ["oli", "tirs"],
            "eo:cloud_cover": cloud_cover, "landsat:wrs_path": f"{path:03d}", "landsat:wrs_row": f"{row:03d}",
            "landsat:collection_category": "T1", "landsat:correction": "L2SP", "proj:epsg": epsg,
        },
        "links": [],
        "assets": {
            "red": {"href": red[0], "type": COG, "title": "Red Band", "roles": ["data"], "gsd": 30,
                    **_proj(red[1], red[2]),
                    "raster:bands": [{"scale": 2.75e-05, "nodata": 0, "offset": -0.2, "data_type": "uint16",
                                      "spatial_resolution": 30, "unit": "none"}]},
            "qa_pixel": {"href": qa[0], "type": COG, "title": "Pixel Quality Assessment Band", "roles": ["cloud"],
                         **_proj(qa[1], qa[2]),
                         "raster:bands": [{"unit": "bit index", "nodata": 1, "data_type": "uint16",
                                           "spatial_resolution": 30}]},
        },
    }
