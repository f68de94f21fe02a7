"""Step 3: the tracking parameters of one pair, from config and the pair's time separation."""

from __future__ import annotations

import math
from icetrack.common.units import DAYS_PER_YEAR



def search_range_px(max_speed_m_per_yr: float, dt_days: float, resolution_m: float,
                    safety_factor: float = 1.2, margin_px: int = 2) -> int:
    """Search half-width (px) that reaches the largest expected displacement with room to
    spare: ``ceil(safety · v_max · dt / res) + margin``. The margin keeps the 3×3
    sub-pixel stencil inside the correlation surface at the fastest point."""
    displacement_px = max_speed_m_per_yr * dt_days / DAYS_PER_YEAR / resolution_m
    return int(math.ceil(safety_factor * displacement_px)) + margin_px


KERNEL_OPTIONS = {  # the tracking.<method> keys that are options of the kernel function itself
    "fft_ncc": ("coarse_to_fine", "lk_iterations"),
    "ampcor": ("oversampling_factor", "coarse_to_fine"),
}


def kernel_parameters(tracking: dict, dt_days: float, resolution_m: float) -> dict:
    """The effective, fully resolved kernel parameters of one pair.

    ``tracking`` is the config's ``tracking`` block with per-glacier overrides applied;
    ``search_px: auto`` is derived from ``max_speed_m_per_yr`` and ``dt_days``. With
    ``method: ampcor`` the ``tracking.ampcor`` windows, where given, set the effective
    chip (reference window), search half-width ((search window − reference window) / 2)
    and step (skip); the method's block is copied as is.
    """
    method = tracking["method"]
    block = dict(tracking.get(method) or {})
    search = tracking.get("search_px", "auto")
    if search == "auto":
        search = search_range_px(tracking["max_speed_m_per_yr"], dt_days, resolution_m,
                                 tracking.get("search_safety_factor", 1.2), tracking.get("search_margin_px", 2))
    chip, step = int(tracking["chip_px"]), int(tracking["step_px"])
    if method == "ampcor":
        chip = int(block.get("reference_window_px", chip))
        step = int(block.get("skip_px", step))
        if "search_window_px" in block:
            search = (int(block["search_window_px"]) - chip) // 2
    params = {
        "method": method,
        "chip_px": chip,
        "step_px": step,
        "search_px": int(search),
        "coarse_prior": bool(tracking.get("coarse_prior", False)),
        "prior_search_px": int(tracking.get("prior_search_px", 3)),
        "dt_days": float(dt_days),
        "resolution_m": float(resolution_m),
    }
    prior = tracking.get("prior") or {}
    if prior.get("reference_vx") or prior.get("reference_vy"):
        if not (prior.get("reference_vx") and prior.get("reference_vy")):
            raise ValueError("tracking.prior: give both reference_vx and reference_vy (GeoTIFF paths), "
                             f"got {prior.get('reference_vx')!r} and {prior.get('reference_vy')!r}")
        params["prior"] = {"reference_vx": str(prior["reference_vx"]), "reference_vy": str(prior["reference_vy"])}
    if block:  # method-specific block, e.g. tracking.ampcor
        params[method] = block
    return params


def kernel_options(params: dict) -> dict:
    """Keyword options of the kernel function from a pair's resolved parameters (kernel.json)."""
    block = params.get(params["method"], {})
    return {key: block[key] for key in KERNEL_OPTIONS.get(params["method"], ()) if key in block}
