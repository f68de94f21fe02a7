"""GeoTIFF export of a velocity dataset."""

from __future__ import annotations

import xarray as xr
from affine import Affine

from .rasters import write_geotiff

GEOTIFF_BANDS = {"vx": "velocity east (m/yr)", "vy": "velocity north (m/yr)", "v": "speed (m/yr)"}


def transform_of(ds: xr.Dataset) -> Affine:
    """The GDAL geotransform stored on the dataset's ``mapping`` variable."""
    return Affine.from_gdal(*map(float, ds["mapping"].attrs["GeoTransform"].split()))


def export_geotiffs(ds: xr.Dataset, outputs: dict[str, str]) -> None:
    """One float32 GeoTIFF (m/yr, NaN nodata) per variable named in ``outputs``."""
    transform, crs = transform_of(ds), ds["mapping"].attrs["spatial_ref"]
    for name, path in outputs.items():
        write_geotiff(path, ds[name].values, transform, crs, descriptions=[GEOTIFF_BANDS[name]], units="m/yr",
                      tags={"acquisition_date_img1": ds.attrs["acquisition_date_img1"],
                            "acquisition_date_img2": ds.attrs["acquisition_date_img2"]})
