"""Sub-pixel peak location on a batch of correlation surfaces."""

from __future__ import annotations

import numpy as np


def quadratic_peak_2d(surfaces: np.ndarray, iy: np.ndarray, ix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares 2-D quadratic fit on the 3×3 neighbourhood of each integer peak.

    ``f(x, y) = a + b x + c y + d x² + e x y + g y²``; the closed-form coefficients for
    the 3×3 stencil are exact sums, so a batch costs a few array operations. A 2-D fit
    (not two 1-D parabolas) follows skewed peaks of sheared ice and shows far less
    pixel locking (field notes: |bias| ≈ 0.008 px).

    Returns (sub-pixel y, sub-pixel x, curvature_y, curvature_x), curvatures being
    −∂²f/∂y² and −∂²f/∂x² (positive at a maximum). Peaks on the surface's border or
    whose fit is not a maximum return NaN offsets.
    """
    b_, h, w = surfaces.shape
    inner = (iy >= 1) & (iy <= h - 2) & (ix >= 1) & (ix <= w - 2)
    cy, cx = np.clip(iy, 1, h - 2), np.clip(ix, 1, w - 2)
    k = np.arange(b_)
    z = np.empty((b_, 3, 3), dtype=np.float64)
    for r in (-1, 0, 1):
        for c in (-1, 0, 1):
            z[:, r + 1, c + 1] = surfaces[k, cy + r, cx + c]
    b = (z[:, :, 2] - z[:, :, 0]).sum(1) / 6
    c = (z[:, 2, :] - z[:, 0, :]).sum(1) / 6
    d = (z[:, :, 2] + z[:, :, 0]).sum(1) / 6 - z[:, :, 1].sum(1) / 3
    g = (z[:, 2, :] + z[:, 0, :]).sum(1) / 6 - z[:, 1, :].sum(1) / 3
    e = (z[:, 2, 2] - z[:, 2, 0] - z[:, 0, 2] + z[:, 0, 0]) / 4
    det = 4 * d * g - e * e
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (-2 * g * b + e * c) / det
        y = (-2 * d * c + e * b) / det
    ok = inner & (d < 0) & (g < 0) & (det > 0) & (np.abs(x) <= 1) & (np.abs(y) <= 1)
    y = np.where(ok, cy + y, np.nan)
    x = np.where(ok, cx + x, np.nan)
    return y, x, -2 * g, -2 * d
