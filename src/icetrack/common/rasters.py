"""Reading and writing georeferenced rasters and NetCDF, always atomically."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from pyproj import CRS
import rasterio.shutil
from rasterio.io import MemoryFile
from rasterio.windows import Window, from_bounds

from icetrack.common.atomic import atomic_path
from icetrack.common.grid import Grid


def covering_window(bounds: tuple[float, float, float, float], transform: Affine, margin_px: int = 0) -> Window:
    """The whole-pixel window that covers ``bounds`` (in the raster's CRS), plus a margin."""
    f = from_bounds(*bounds, transform=transform)
    col0, row0 = math.floor(f.col_off) - margin_px, math.floor(f.row_off) - margin_px
    col1 = math.ceil(f.col_off + f.width) + margin_px
    row1 = math.ceil(f.row_off + f.height) + margin_px
    return Window(col0, row0, col1 - col0, row1 - row0)


def cog_blocksize(shape: tuple[int, int]) -> int:
    """COG tile size: 256 px for large rasters, smaller (≥ 16, a power of two) for small ones so
    that even a small map is tiled and has at least one overview level."""
    size = 256
    while size > 16 and max(shape) < 2 * size:
        size //= 2
    return size


def write_geotiff(path: str | Path, bands: np.ndarray | list[np.ndarray], transform: Affine, crs: str,
                  descriptions: list[str] | None = None, units: str | None = None, tags: dict | None = None,
                  dtype: str = "float32") -> None:
    """Cloud-Optimised GeoTIFF: float32 with NaN nodata (or ``dtype``, e.g. "uint8" for masks:
    an eighth of the memory and disk, no nodata), tiled, deflate, overviews (average), band
    descriptions and ``units`` (band tag and GDAL unit type); written to a temp name then renamed.

    The bands are first written to an in-memory GTiff, then copied with GDAL's COG driver,
    which lays out the overviews and tiles in the order cloud readers expect.
    """
    arrays = [bands] if isinstance(bands, np.ndarray) and bands.ndim == 2 else list(bands)
    h, w = arrays[0].shape
    floating = np.issubdtype(np.dtype(dtype), np.floating)
    profile = dict(driver="GTiff", width=w, height=h, count=len(arrays), dtype=dtype, crs=crs, transform=transform,
                   nodata=np.nan if floating else None)
    block = cog_blocksize((h, w))
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            for i, a in enumerate(arrays, start=1):
                dst.write(a.astype(dtype, copy=False), i)  # no full-size copy when already of that type
                if descriptions:
                    dst.set_band_description(i, descriptions[i - 1])
                if units:
                    dst.update_tags(i, units=units)
            if units:
                dst.units = (units,) * len(arrays)
            if tags:
                dst.update_tags(**{k: str(v) for k, v in tags.items()})
        with atomic_path(path) as tmp:
            rasterio.shutil.copy(mem.name, tmp, driver="COG", compress="DEFLATE", predictor="YES", blocksize=block,
                                 overviews="AUTO", overview_resampling="AVERAGE", resampling="AVERAGE")


def read_band(path: str | Path, band: int = 1) -> tuple[np.ndarray, Affine, str]:
    """(array as float32 with NaN nodata, transform, CRS string) of one band."""
    with rasterio.open(path) as src:
        a = src.read(band, out_dtype="float32")  # one array, no converted copy
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


def geotransform_text(transform: Affine) -> str:
    """A transform as GDAL's ``GeoTransform`` attribute text (the form QGIS and GDAL read)."""
    return " ".join(str(v) for v in transform.to_gdal())


def parse_geotransform(text: str) -> Affine:
    """The inverse of :func:`geotransform_text`."""
    return Affine.from_gdal(*map(float, text.split()))


def transform_of(ds: xr.Dataset) -> Affine:
    """The GDAL geotransform stored on the dataset's ``mapping`` variable."""
    return parse_geotransform(ds["mapping"].attrs["GeoTransform"])


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
    mapping_attrs["GeoTransform"] = geotransform_text(transform)
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


def raster_at_cells(path: str | Path, x: np.ndarray, y: np.ndarray, band: int = 1) -> np.ndarray:
    """Band values of the raster pixels containing each (x, y) cell centre of a grid (NaN outside).

    ``x`` (columns) and ``y`` (rows) are the grid's 1-D pixel-centre coordinates, in the
    raster's CRS. Used to bring the image-grid masks onto the coarser velocity grid.
    """
    with rasterio.open(path) as src:
        a = src.read(band, out_dtype="float32")  # one array, no converted copy
        xx, yy = np.meshgrid(x, y)
        rows, cols = rasterio.transform.rowcol(src.transform, xx.ravel(), yy.ravel())
    rows, cols = np.asarray(rows).reshape(xx.shape), np.asarray(cols).reshape(xx.shape)
    inside = (rows >= 0) & (rows < a.shape[0]) & (cols >= 0) & (cols < a.shape[1])
    out = np.full(rows.shape, np.nan, np.float32)
    out[inside] = a[rows[inside], cols[inside]]
    return out


def grid_of(transform: Affine, shape: tuple[int, int], crs: str) -> Grid:
    """The :class:`Grid` of a north-up raster."""
    return Grid(crs=crs, x_min=transform.c, y_max=transform.f, resolution_m=transform.a, width=shape[1], height=shape[0])
