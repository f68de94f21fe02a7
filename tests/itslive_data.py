"""Small ITS_LIVE-layout datasets for the tests, with known velocity fields.

Layouts follow the real products (see src/icetrack/reference/itslive.py for the sources):
a Zarr v2 datacube (consolidated metadata) with ``mid_date``, ``x``, ``y`` coordinates,
int16 ``vx, vy, v, v_error`` in "m/y" with -32767 missing, ``date_dt`` in days,
``acquisition_date_img1/2`` and a ``mapping`` variable (``spatial_epsg``, ``GeoTransform``),
chunked as the real cubes are for time series (the whole time axis of a small x/y tile
per chunk); the cube catalogue GeoJSON (``zarr_url``, ``data_epsg``, ``geometry_epsg``,
``roi_percent_coverage``, ``datacube_exist``); annual mosaic COGs named
``ITS_LIVE_velocity_120m_<region>_<year>_v02_<var>.tif``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer

from icetrack.common.rasters import write_geotiff

CELL_M = 120.0


def cube_field(x: np.ndarray, y: np.ndarray, x0: float, y0: float) -> tuple[np.ndarray, np.ndarray]:
    """The known flow (m/yr) of the test cube: linear in x and y, integer on the cube cells."""
    vx = 100.0 + 2.0 * (x - x0) / CELL_M
    vy = -50.0 + 1.0 * (y - y0) / CELL_M
    return vx, vy


def write_cube(root: Path, epsg: int, x0: float, y0: float, size: int = 100, chunk: int = 10, year: int = 2020,
               fields: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """A ``size``² cube of 120 m cells whose south-west cell centre is (x0, y0), y descending.

    The flow is :func:`cube_field` or ``fields`` (vx, vy on the cube cells, north row first).
    Layers (``mid_date`` deliberately unsorted, as in real cubes): 5 pairs in ``year`` with
    dt 16–48 days and offsets −20, −10, 0, +10, +20 m/yr on vx (median = the field); one
    pair that year with dt 400 days and +900 m/yr (excluded by max_dt_days); one pair two
    years before with +900 m/yr (outside the dates). One pair has a missing (−32767) cell.
    Returns what the tests need to know.
    """
    x = x0 + CELL_M * np.arange(size)
    y = (y0 + CELL_M * (size - 1)) - CELL_M * np.arange(size)
    xx, yy = np.meshgrid(x, y)
    vx, vy = fields if fields is not None else cube_field(xx, yy, x0, y0)
    layers = [  # (mid_date, dt days, vx offset)
        (f"{year}-03-10", 32, 10.0), (f"{year - 2}-06-01", 16, 900.0), (f"{year}-02-01", 16, -20.0),
        (f"{year}-05-20", 48, 0.0), (f"{year}-04-01", 400, 900.0), (f"{year}-01-15", 24, 20.0),
        (f"{year}-06-30", 16, -10.0),
    ]
    mid = pd.to_datetime([m for m, _, _ in layers])
    dt = np.array([d for _, d, _ in layers], np.float32)
    vxs = np.stack([vx + off for _, _, off in layers])
    vys = np.stack([vy for _ in layers])
    missing_layer = 0
    vxs[missing_layer, 5, 5] = np.nan
    vys[missing_layer, 5, 5] = np.nan
    vs = np.hypot(vxs, vys)
    err = np.full_like(vs, 12.0)
    ds = xr.Dataset(coords={
        "mid_date": ("mid_date", mid.values, {"standard_name": "image_pair_center_date_with_time_separation"}),
        "x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "m"}),
        "y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "m"}),
    })
    for name, data, desc in (("vx", vxs, "velocity component in x direction"),
                             ("vy", vys, "velocity component in y direction"),
                             ("v", vs, "velocity magnitude"), ("v_error", err, "velocity magnitude error")):
        ds[name] = (("mid_date", "y", "x"), data, {"units": "m/y", "description": desc, "grid_mapping": "mapping"})
    ds["date_dt"] = ("mid_date", dt, {"units": "days", "standard_name": "image_pair_time_separation"})
    ds["acquisition_date_img1"] = ("mid_date", (mid - pd.to_timedelta(dt / 2, unit="D")).values)
    ds["acquisition_date_img2"] = ("mid_date", (mid + pd.to_timedelta(dt / 2, unit="D")).values)
    crs = CRS.from_epsg(epsg)
    gt = f"{x[0] - CELL_M / 2} {CELL_M} 0 {y[0] + CELL_M / 2} 0 {-CELL_M}"
    ds["mapping"] = ((), "", {"grid_mapping_name": "universal_transverse_mercator", "spatial_epsg": epsg,
                              "GeoTransform": gt, "crs_wkt": crs.to_wkt()})
    ds.attrs.update({"Conventions": "CF-1.8", "title": "ITS_LIVE datacube of image pair velocities",
                     "projection": str(epsg), "GDAL_AREA_OR_POINT": "Area"})
    encoding = {name: {"dtype": "int16", "_FillValue": -32767, "chunks": (len(layers), chunk, chunk)}
                for name in ("vx", "vy", "v", "v_error")}
    name = f"ITS_LIVE_vel_EPSG{epsg}_G0120_X{int(x0 + 50_000)}_Y{int(y0 + 50_000)}.zarr"
    path = root / "datacubes" / "v02" / "TEST" / name
    ds.to_zarr(path, zarr_format=2, consolidated=True, encoding=encoding, mode="w")
    return {"path": path, "relative": path.relative_to(root).as_posix(), "x": x, "y": y, "crs": crs.to_string(),
            "layers": layers, "missing_cell": (missing_layer, 5, 5)}


def write_catalog(root: Path, cubes: list[tuple[str, int, tuple[float, float, float, float]]]) -> Path:
    """The cube catalogue: a GeoJSON FeatureCollection, one lon/lat footprint per cube.

    ``cubes``: (zarr_url, epsg, (x_min, y_min, x_max, y_max) in that EPSG)."""
    features = []
    for url, epsg, (x1, y1, x2, y2) in cubes:
        ring_xy = [(x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1)]
        to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
        ring_ll = [list(to_ll.transform(x, y)) for x, y in ring_xy]
        features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring_ll]},
                         "properties": {"fill-opacity": 0.5, "fill": "red", "roi_percent_coverage": 12.5,
                                        "data_epsg": f"EPSG:{epsg}",
                                        "geometry_epsg": {"type": "Polygon", "coordinates": [[list(p) for p in ring_xy]]},
                                        "datacube_exist": 1, "zarr_url": url}})
    path = root / "datacubes" / "catalog_v02.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def true_to_map_axes(east: float, north: float, epsg: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A velocity given along true (geographic) east and north → its components along the map
    x and y axes of ``epsg`` at the points (x, y), same magnitude."""
    to_map = Transformer.from_crs(4326, epsg, always_xy=True)
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(x, y)
    d = 1e-4  # degrees
    ex = np.array(to_map.transform(lon + d, lat)) - np.array([x, y])
    ny = np.array(to_map.transform(lon, lat + d)) - np.array([x, y])
    ex, ny = ex / np.hypot(*ex), ny / np.hypot(*ny)
    return east * ex[0] + north * ny[0], east * ex[1] + north * ny[1]


MOSAIC_EPSG = 3413  # NSIDC Sea Ice Polar Stereographic North, ITS_LIVE's Greenland projection


def write_mosaics(root: Path, region: str, years: dict[int, tuple[float, float]], centre_lonlat: tuple[float, float],
                  size: int = 1200) -> dict:
    """Annual mosaic COGs in EPSG:3413 whose flow is uniform in east/north: ``years`` maps a year
    to its (east, north) velocity (m/yr); vx/vy are stored along the 3413 axes, as ITS_LIVE does."""
    to_ps = Transformer.from_crs(4326, MOSAIC_EPSG, always_xy=True)
    cx, cy = to_ps.transform(*centre_lonlat)
    x_min, y_max = np.floor(cx / CELL_M) * CELL_M - size / 2 * CELL_M, np.floor(cy / CELL_M) * CELL_M + size / 2 * CELL_M
    transform = Affine(CELL_M, 0, x_min, 0, -CELL_M, y_max)
    x = x_min + CELL_M * (np.arange(size) + 0.5)
    y = y_max - CELL_M * (np.arange(size) + 0.5)
    xx, yy = np.meshgrid(x, y)
    out = {}
    folder = root / "velocity_mosaic" / "v2" / "annual" / "cog"
    for year, (east, north) in years.items():
        vx, vy = true_to_map_axes(east, north, MOSAIC_EPSG, xx, yy)
        fields = {"vx": vx, "vy": vy, "v": np.hypot(vx, vy), "v_error": np.full_like(vx, 5.0)}
        for name, data in fields.items():
            path = folder / f"ITS_LIVE_velocity_120m_{region}_{year}_v02_{name}.tif"
            write_geotiff(path, data.astype(np.float32), transform, f"EPSG:{MOSAIC_EPSG}", descriptions=[name], units="m/y")
            out[(year, name)] = path
    return {"files": out, "folder": folder, "transform": transform}
