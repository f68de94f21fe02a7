"""Accuracy of a velocity map against a known (true) field, e.g. the demo's."""

from __future__ import annotations

import numpy as np
import rasterio
import xarray as xr
from rasterio.warp import Resampling, reproject

from icetrack.common.rasters import transform_of


def sample_truth(truth_path: str, ds: xr.Dataset, resampling: Resampling = Resampling.average) -> np.ndarray:
    """A truth raster averaged onto the velocity map's grid (one value per output pixel)."""
    out = np.full(ds["vx"].shape, np.nan, dtype=np.float32)
    with rasterio.open(truth_path) as src:
        reproject(rasterio.band(src, 1), out, dst_transform=transform_of(ds), dst_crs=ds["mapping"].attrs["spatial_ref"],
                  dst_nodata=np.nan, resampling=resampling)
    return out


def speed_errors(ds: xr.Dataset, truth_vx: str, truth_vy: str, region: np.ndarray) -> dict:
    """Median absolute speed error and valid share over ``region`` (bool, on the map grid)."""
    tvx, tvy = sample_truth(truth_vx, ds), sample_truth(truth_vy, ds)
    true_speed = np.hypot(tvx, tvy)
    v = ds["v"].values
    valid = region & np.isfinite(v)
    err = np.abs(v[valid] - true_speed[valid])
    return {
        "points": int(region.sum()),
        "valid_fraction": float(valid.sum() / max(region.sum(), 1)),
        "median_abs_speed_error_m_per_yr": float(np.median(err)) if err.size else float("nan"),
        "max_true_speed_m_per_yr": float(np.nanmax(true_speed)),
        "vx_rmse_m_per_yr": float(np.sqrt(np.mean((ds["vx"].values[valid] - tvx[valid]) ** 2))) if err.size else float("nan"),
        "vy_rmse_m_per_yr": float(np.sqrt(np.mean((ds["vy"].values[valid] - tvy[valid]) ** 2))) if err.size else float("nan"),
    }
