"""Reading and writing georeferenced rasters and NetCDF, always atomically."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from pyproj import CRS
from rasterio.windows import Window, from_bounds

from .atomic import atomic_path
from .grid import Grid


def covering_window(bounds: tuple[float, float, float, float], transform: Affine, margin_px: int = 0) -> Window:
    """The whole-pixel window that covers ``bounds`` (in the raster's CRS), plus a margin."""
    f = from_bounds(*bounds, transform=transform)
    col0, row0 = math.floor(f.col_off) - margin_px, math.floor(f.row_off) - margin_px
    col1 = math.ceil(f.col_off + f.width) + margin_px
    row1 = math.ceil(f.row_off + f.height) + margin_px
    return Window(col0, row0, col1 - col0, row1 - row0)


def write_geotiff(path: str | Path, bands: np.ndarray | list[np.ndarray], transform: Affine, crs: str,
                  descriptions: list[str] | None = None, units: str | None = None, tags: dict | None = None) -> None:
    """Float32 GeoTIFF, NaN nodata, tiled and compressed; written to a temp name then renamed."""
    arrays = [bands] if isinstance(bands, np.ndarray) and bands.ndim == 2 else list(bands)
    h, w = arrays[0].shape
    profile = dict(driver="GTiff", width=w, height=h, count=len(arrays), dtype="float32", crs=crs, transform=transform,
                   nodata=np.nan, compress="deflate", predictor=3)
    if h >= 256 and w >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            for i, a in enumerate(arrays, start=1):
                dst.write(a.astype(np.float32), i)
                if descriptions:
                    dst.set_band_description(i, descriptions[i - 1])
                if units:
                    dst.update_tags(i, units=units)
            if tags:
                dst.update_tags(**{k: str(v) for k, v in tags.items()})


def read_band(path: str | Path, band: int = 1) -> tuple[np.ndarray, Affine, str]:
    """(array as float32 with NaN nodata, transform, CRS string) of one band."""
    with rasterio.open(path) as src:
        a = src.read(band).astype(np.float32)
        if src.nodata is not None and not np.isnan(src.nodata):
            a[a == src.nodata] = np.nan
        return a, src.transform, src.crs.to_string()


def xy_coords(transform: Affine, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre x (east) and y (north) coordinates of a north-up grid."""
    x = transform.c + transform.a * (np.arange(shape[1]) + 0.5)
    y = transform.f + transform.e * (np.arange(shape[0]) + 0.5)
    return x, y


def grid_mapping_attrs(crs: str) -> dict:
    """CF grid-mapping attributes for ``crs`` (plus the WKT in ``spatial_ref`` for GDAL/QGIS)."""
    c = CRS.from_user_input(crs)
    attrs = c.to_cf()
    attrs["spatial_ref"] = c.to_wkt()
    return attrs


def dataset_on_grid(variables: dict[str, tuple[np.ndarray, dict]], transform: Affine, crs: str, attrs: dict) -> xr.Dataset:
    """An xarray Dataset with x/y coordinates, a ``mapping`` grid-mapping variable and CF attributes."""
    shape = next(iter(variables.values()))[0].shape
    x, y = xy_coords(transform, shape)
    ds = xr.Dataset(coords={
        "x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X", "long_name": "x coordinate of pixel centre"}),
        "y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y", "long_name": "y coordinate of pixel centre"}),
    })
    for name, (data, var_attrs) in variables.items():
        ds[name] = (("y", "x"), data, {**var_attrs, "grid_mapping": "mapping"})
    mapping_attrs = grid_mapping_attrs(crs)
    mapping_attrs["GeoTransform"] = " ".join(str(v) for v in transform.to_gdal())
    ds["mapping"] = ((), np.int32(0), mapping_attrs)
    ds.attrs.update({"Conventions": "CF-1.8", **attrs})
    return ds


def write_netcdf(ds: xr.Dataset, path: str | Path) -> None:
    """Write ``ds`` compressed, through a temp name."""
    encoding = {v: {"zlib": True, "complevel": 4} for v in ds.data_vars if ds[v].ndim >= 2}
    for v in ds.data_vars:
        if ds[v].dtype.kind == "f" and v in encoding:
            encoding[v]["_FillValue"] = np.float32(np.nan) if ds[v].dtype == np.float32 else np.nan
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)


def grid_of(transform: Affine, shape: tuple[int, int], crs: str) -> Grid:
    """The :class:`Grid` of a north-up raster."""
    return Grid(crs=crs, x_min=transform.c, y_max=transform.f, resolution_m=transform.a, width=shape[1], height=shape[0])
