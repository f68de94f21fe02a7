"""Glue for step 6: raw offsets file + masks → velocity dataset and quality figures."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import rasterio
import xarray as xr

from . import __version__
from .offsets_io import Offsets
from .outcome import judge
from .postprocess import REASONS, offsets_to_velocity
from .quality import glaft_metrics
from .rasters import dataset_on_grid

VELOCITY_ATTRS = {
    "vx": {"standard_name": "land_ice_surface_x_velocity", "long_name": "velocity component in x direction (east)", "units": "m/yr"},
    "vy": {"standard_name": "land_ice_surface_y_velocity", "long_name": "velocity component in y direction (north)", "units": "m/yr"},
    "v": {"standard_name": "land_ice_surface_velocity", "long_name": "velocity magnitude", "units": "m/yr"},
    "v_error": {"long_name": "velocity magnitude error (1 sigma)", "units": "m/yr"},
    "vx_error": {"long_name": "error of vx (1 sigma)", "units": "m/yr"},
    "vy_error": {"long_name": "error of vy (1 sigma)", "units": "m/yr"},
    "chip_correlation": {"long_name": "normalised cross-correlation peak", "units": "1"},
    "snr": {"long_name": "correlation signal-to-noise ratio", "units": "1"},
    "interp_mask": {"long_name": "1 where the value was interpolated into a small gap", "units": "1",
                    "flag_values": np.array([0, 1], np.uint8), "flag_meanings": "measured interpolated"},
    "reject_reason": {"long_name": "why a point was masked (bit flags)", "units": "1",
                      "flag_masks": np.array(list(REASONS.values()), np.uint8), "flag_meanings": " ".join(REASONS)},
}


def masks_on_points(masks_path: str, offsets: Offsets) -> tuple[np.ndarray, np.ndarray]:
    """Glacier and stable-ground masks sampled at each chip centre."""
    with rasterio.open(masks_path) as src:
        glacier, stable = src.read(1) > 0.5, src.read(2) > 0.5
    n_rows, n_cols = offsets.arrays["dx"].shape
    r = np.arange(n_rows) * offsets.step_px + offsets.chip_px // 2
    c = np.arange(n_cols) * offsets.step_px + offsets.chip_px // 2
    rr, cc = np.meshgrid(np.clip(r, 0, glacier.shape[0] - 1), np.clip(c, 0, glacier.shape[1] - 1), indexing="ij")
    return glacier[rr, cc], stable[rr, cc]


def reference_on_points(vx_path: str, vy_path: str, offsets: Offsets) -> tuple[np.ndarray, np.ndarray]:
    """A reference flow field (two GeoTIFFs, m/yr, x east / y north, any CRS) averaged
    onto the point grid; NaN where the reference has no value."""
    from rasterio.warp import Resampling, reproject

    shape = offsets.arrays["dx"].shape
    out = []
    for path in (vx_path, vy_path):
        band = np.full(shape, np.nan, dtype=np.float32)
        try:
            with rasterio.open(path) as src:
                reproject(rasterio.band(src, 1), band, dst_transform=offsets.transform, dst_crs=offsets.crs,
                          src_nodata=src.nodata, dst_nodata=np.nan, resampling=Resampling.average)
        except rasterio.errors.RasterioIOError as error:
            raise ValueError(f"postprocess.direction: cannot read reference velocity {path!r}: {error}") from None
        out.append(band)
    return out[0], out[1]


def postprocess_pair(offsets: Offsets, masks_path: str, config: dict) -> tuple[xr.Dataset, dict]:
    """The velocity dataset (ITS_LIVE-like variable names) and the quality dict of a pair.

    The quality dict holds the postprocess statistics (reject shares, stable-ground
    median/NMAD) and the GLAFT metrics (:func:`icetrack.quality.glaft_metrics`).
    """
    a = offsets.arrays
    glacier, stable = masks_on_points(masks_path, offsets)
    k = offsets.kernel
    direction = config.get("direction") or {}
    reference = None
    if direction.get("reference_vx") or direction.get("reference_vy"):
        if not (direction.get("reference_vx") and direction.get("reference_vy")):
            raise ValueError("postprocess.direction: give both reference_vx and reference_vy (GeoTIFF paths), "
                             f"got {direction.get('reference_vx')!r} and {direction.get('reference_vy')!r}")
        reference = reference_on_points(direction["reference_vx"], direction["reference_vy"], offsets)
    vel = offsets_to_velocity(a["dx"], a["dy"], a["peak"], a["snr"], a["sigma_x"], a["sigma_y"],
                              (offsets.image_transform.a, offsets.image_transform.e), k["dt_days"], glacier, stable,
                              config, reference=reference)
    vel, status = judge(vel, k.get("inputs"))  # an empty or noise-only map says so, and why (icetrack.outcome)
    ref, sec = (datetime.strptime(d, "%Y%m%d") for d in k["pair"].split("_"))
    center = ref + (sec - ref) / 2
    variables = {
        "vx": (vel.vx, VELOCITY_ATTRS["vx"]), "vy": (vel.vy, VELOCITY_ATTRS["vy"]),
        "v": (vel.v.astype(np.float32), VELOCITY_ATTRS["v"]), "v_error": (vel.v_error.astype(np.float32), VELOCITY_ATTRS["v_error"]),
        "vx_error": (vel.vx_error, VELOCITY_ATTRS["vx_error"]), "vy_error": (vel.vy_error, VELOCITY_ATTRS["vy_error"]),
        "chip_correlation": (a["peak"].astype(np.float32), VELOCITY_ATTRS["chip_correlation"]),
        "snr": (a["snr"].astype(np.float32), VELOCITY_ATTRS["snr"]),
        "interp_mask": (vel.interpolated.astype(np.uint8), VELOCITY_ATTRS["interp_mask"]),
        "reject_reason": (vel.reject_reason, VELOCITY_ATTRS["reject_reason"]),
    }
    ds = dataset_on_grid(variables, offsets.transform, offsets.crs, {
        "title": "icetrack glacier surface velocity (image pair)",
        "source": f"icetrack {__version__}",
        "icetrack_version": __version__,
        "acquisition_date_img1": ref.strftime("%Y-%m-%d"),
        "acquisition_date_img2": sec.strftime("%Y-%m-%d"),
        "date_center": center.strftime("%Y-%m-%dT%H:%M:%S"),
        "date_dt_days": float(k["dt_days"]),
        "kernel_parameters": str(k),
    })
    glaft_cfg = config.get("glaft") or {}
    glaft = glaft_metrics(vel.vx, vel.vy, stable, glacier, (offsets.transform.a, offsets.transform.e), k["dt_days"],
                          glaft_cfg.get("thres_sigma", 2.0), glaft_cfg.get("kde_gridsize", 60))
    quality = {**status, "pair": k["pair"], "dt_days": k["dt_days"], **vel.stats, "glaft": glaft}
    return ds, quality
