"""Glue for step 6: raw offsets file + masks → velocity dataset and quality figures."""

from __future__ import annotations

import numpy as np
import rasterio
import xarray as xr

from icetrack.track.offsets_file import Offsets
from icetrack.postprocess.outcome import judge
from icetrack.postprocess.velocity import offsets_to_velocity
from icetrack.outputs.netcdf import velocity_product
from icetrack.common.provenance import provenance_record
from icetrack.postprocess.quality import glaft_metrics


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
    return reference_on_grid(vx_path, vy_path, offsets.transform, offsets.crs, offsets.arrays["dx"].shape,
                             "postprocess.direction")


def reference_on_grid(vx_path: str, vy_path: str, transform, crs: str, shape: tuple[int, int],
                      where: str) -> tuple[np.ndarray, np.ndarray]:
    """Two reference GeoTIFFs (any CRS) averaged onto the grid ``transform``/``crs``/``shape``;
    NaN where the reference has no value. ``where`` names the config key in errors."""
    from rasterio.warp import Resampling, reproject

    out = []
    for path in (vx_path, vy_path):
        band = np.full(shape, np.nan, dtype=np.float32)
        try:
            with rasterio.open(path) as src:
                reproject(rasterio.band(src, 1), band, dst_transform=transform, dst_crs=crs,
                          src_nodata=src.nodata, dst_nodata=np.nan, resampling=Resampling.average)
        except rasterio.errors.RasterioIOError as error:
            raise ValueError(f"{where}: cannot read reference velocity {path!r}: {error}") from None
        out.append(band)
    return out[0], out[1]


def postprocess_pair(offsets: Offsets, masks_path: str, config: dict,
                     provenance: dict | None = None) -> tuple[xr.Dataset, dict]:
    """The velocity dataset (ITS_LIVE layout, see :mod:`icetrack.outputs.netcdf`) and the quality dict of a pair.

    The quality dict holds the outcome (status/reason, :mod:`icetrack.postprocess.outcome`), the
    postprocess statistics (reject shares, stable-ground median/NMAD) and the GLAFT
    metrics (:func:`icetrack.postprocess.quality.glaft_metrics`).
    ``provenance`` is the rule's provenance param ({"config": effective config blocks,
    "scene_ids_img1": [...], "scene_ids_img2": [...]}); with the kernel parameters it
    becomes the :func:`icetrack.common.provenance.provenance_record` written into both outputs.
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
    vel, status = judge(vel, k.get("inputs"))  # an empty or noise-only map says so, and why (icetrack.postprocess.outcome)
    arrays = {
        "vx": vel.vx, "vy": vel.vy, "v": vel.v.astype(np.float32), "v_error": vel.v_error.astype(np.float32),
        "vx_error": vel.vx_error, "vy_error": vel.vy_error,
        "chip_correlation": a["peak"].astype(np.float32), "snr": a["snr"].astype(np.float32),
        "interp_mask": vel.interpolated.astype(np.uint8), "reject_reason": vel.reject_reason,
    }
    record = (provenance_record(provenance["config"], provenance["scene_ids_img1"], provenance["scene_ids_img2"], k)
              if provenance else None)
    ds = velocity_product(arrays, offsets.transform, offsets.crs, k["pair"], k["dt_days"], vel.stats, k, record)
    glaft_cfg = config.get("glaft") or {}
    glaft = glaft_metrics(vel.vx, vel.vy, stable, glacier, (offsets.transform.a, offsets.transform.e), k["dt_days"],
                          glaft_cfg.get("thres_sigma", 2.0), glaft_cfg.get("kde_gridsize", 60))
    quality = {**status, "pair": k["pair"], "dt_days": k["dt_days"], **vel.stats, "glaft": glaft}
    if record:
        quality["provenance"] = record
    return ds, quality
