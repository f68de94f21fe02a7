"""Step 3: the tracking parameters of one pair, from config and the pair's time separation."""

from __future__ import annotations

import math

DAYS_PER_YEAR = 365.25


def search_range_px(max_speed_m_per_yr: float, dt_days: float, resolution_m: float,
                    safety_factor: float = 1.2, margin_px: int = 2) -> int:
    """Search half-width (px) that reaches the largest expected displacement with room to
    spare: ``ceil(safety · v_max · dt / res) + margin``. The margin keeps the 3×3
    sub-pixel stencil inside the correlation surface at the fastest point."""
    displacement_px = max_speed_m_per_yr * dt_days / DAYS_PER_YEAR / resolution_m
    return int(math.ceil(safety_factor * displacement_px)) + margin_px


def kernel_parameters(tracking: dict, dt_days: float, resolution_m: float) -> dict:
    """The effective, fully resolved kernel parameters of one pair.

    ``tracking`` is the config's ``tracking`` block with per-glacier overrides applied;
    ``search_px: auto`` is derived from ``max_speed_m_per_yr`` and ``dt_days``.
    """
    search = tracking.get("search_px", "auto")
    if search == "auto":
        search = search_range_px(tracking["max_speed_m_per_yr"], dt_days, resolution_m,
                                 tracking.get("search_safety_factor", 1.2), tracking.get("search_margin_px", 2))
    params = {
        "method": tracking["method"],
        "chip_px": int(tracking["chip_px"]),
        "step_px": int(tracking["step_px"]),
        "search_px": int(search),
        "dt_days": float(dt_days),
        "resolution_m": float(resolution_m),
    }
    if tracking["method"] in tracking:  # method-specific block, e.g. tracking.ampcor
        params[tracking["method"]] = dict(tracking[tracking["method"]])
    return params
