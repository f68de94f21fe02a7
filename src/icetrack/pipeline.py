"""Glue for step 6: raw offsets file + masks → velocity dataset and quality figures."""

from __future__ import annotations

import numpy as np
import rasterio
import xarray as xr

from .offsets_io import Offsets
from .postprocess import offsets_to_velocity
from .product import VELOCITY_ATTRS, velocity_product  # noqa: F401 - VELOCITY_ATTRS re-exported
from .provenance import provenance_record

def masks_on_points(masks_path: str, offsets: Offsets) -> tuple[np.ndarray, np.ndarray]:
    """Glacier and stable-ground masks sampled at each chip centre."""
    with rasterio.open(masks_path) as src:
        glacier, stable = src.read(1) > 0.5, src.read(2) > 0.5
    n_rows, n_cols = offsets.arrays["dx"].shape
    r = np.arange(n_rows) * offsets.step_px + offsets.chip_px // 2
    c = np.arange(n_cols) * offsets.step_px + offsets.chip_px // 2
    rr, cc = np.meshgrid(np.clip(r, 0, glacier.shape[0] - 1), np.clip(c, 0, glacier.shape[1] - 1), indexing="ij")
    return glacier[rr, cc], stable[rr, cc]


def postprocess_pair(offsets: Offsets, masks_path: str, config: dict,
                     provenance: dict | None = None) -> tuple[xr.Dataset, dict]:
    """The velocity dataset (ITS_LIVE layout, see :mod:`icetrack.product`) and the quality dict of a pair.

    ``provenance`` is the rule's provenance param ({"config": effective config blocks,
    "scene_ids_img1": [...], "scene_ids_img2": [...]}); with the kernel parameters it
    becomes the :func:`icetrack.provenance.provenance_record` written into both outputs.
    """
    a = offsets.arrays
    glacier, stable = masks_on_points(masks_path, offsets)
    k = offsets.kernel
    vel = offsets_to_velocity(a["dx"], a["dy"], a["peak"], a["snr"], a["sigma_x"], a["sigma_y"],
                              (offsets.image_transform.a, offsets.image_transform.e), k["dt_days"], glacier, stable, config)
    arrays = {
        "vx": vel.vx, "vy": vel.vy, "v": vel.v.astype(np.float32), "v_error": vel.v_error.astype(np.float32),
        "vx_error": vel.vx_error, "vy_error": vel.vy_error,
        "chip_correlation": a["peak"].astype(np.float32), "snr": a["snr"].astype(np.float32),
        "interp_mask": vel.interpolated.astype(np.uint8), "reject_reason": vel.reject_reason,
    }
    record = (provenance_record(provenance["config"], provenance["scene_ids_img1"], provenance["scene_ids_img2"], k)
              if provenance else None)
    ds = velocity_product(arrays, offsets.transform, offsets.crs, k["pair"], k["dt_days"], vel.stats, k, record)
    quality = {"pair": k["pair"], "dt_days": k["dt_days"], **vel.stats}
    if record:
        quality["provenance"] = record
    return ds, quality
