"""GeoTIFF export of a velocity dataset (Cloud-Optimised, with units, dates and provenance tags)."""

from __future__ import annotations

import xarray as xr

from icetrack.common.provenance import provenance_of
from icetrack.common.rasters import transform_of, write_geotiff

GEOTIFF_BANDS = {"vx": "velocity east (m/yr)", "vy": "velocity north (m/yr)", "v": "speed (m/yr)",
                 "v_error": "speed error, 1 sigma (m/yr)"}
PAIR_TAGS = ("acquisition_date_img1", "acquisition_date_img2", "date_center", "date_dt_days")


def geotiff_tags(ds: xr.Dataset) -> dict[str, str]:
    """Dataset-level tags of a pair's GeoTIFFs: pair dates and the provenance attributes."""
    tags = {k: str(ds.attrs[k]) for k in PAIR_TAGS if k in ds.attrs}
    tags.update(provenance_of(ds.attrs))
    return tags


def export_geotiffs(ds: xr.Dataset, outputs: dict[str, str]) -> None:
    """One float32 Cloud-Optimised GeoTIFF (m/yr, NaN nodata) per variable named in ``outputs``."""
    transform, crs = transform_of(ds), ds["mapping"].attrs["spatial_ref"]
    tags = geotiff_tags(ds)
    for name, path in outputs.items():
        write_geotiff(path, ds[name].values, transform, crs, descriptions=[GEOTIFF_BANDS[name]],
                      units=ds[name].attrs.get("units", "m/yr"), tags={**tags, "variable": name})
