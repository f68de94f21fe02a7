"""Figures: speed over the reference image with flow arrows."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from affine import Affine  # noqa: E402

from .atomic import atomic_path  # noqa: E402


def _extent(transform: Affine, shape: tuple[int, int]) -> list[float]:
    """(left, right, bottom, top) in km for imshow."""
    left, top = transform.c, transform.f
    right, bottom = left + transform.a * shape[1], top + transform.e * shape[0]
    return [left / 1e3, right / 1e3, bottom / 1e3, top / 1e3]


def speed_map(path: str | Path, background: np.ndarray, bg_transform: Affine, vx: np.ndarray, vy: np.ndarray,
              v_transform: Affine, crs: str, title: str, arrows: int = 25) -> None:
    """Speed (m/yr, perceptually uniform colours) over the greyscale reference image, with arrows."""
    v = np.hypot(vx, vy)
    fig, ax = plt.subplots(figsize=(8, 7), constrained_layout=True)
    lo, hi = np.nanpercentile(background, [2, 98]) if np.isfinite(background).any() else (0, 1)
    ax.imshow(background, cmap="gray", vmin=lo, vmax=hi, extent=_extent(bg_transform, background.shape))
    vmax = np.nanpercentile(v, 99) if np.isfinite(v).any() else 1.0
    im = ax.imshow(v, cmap="viridis", vmin=0, vmax=vmax, alpha=0.75, extent=_extent(v_transform, v.shape))
    fig.colorbar(im, ax=ax, label="speed (m/yr)", shrink=0.8)
    stride = max(1, max(v.shape) // arrows)
    rows, cols = np.mgrid[0 : v.shape[0] : stride, 0 : v.shape[1] : stride]
    x = (v_transform.c + v_transform.a * (cols + 0.5)) / 1e3
    y = (v_transform.f + v_transform.e * (rows + 0.5)) / 1e3
    ax.quiver(x, y, vx[rows, cols], vy[rows, cols], color="white", angles="xy", scale_units="xy",
              scale=vmax / (stride * abs(v_transform.a) / 1e3) if vmax > 0 else None, width=0.003)
    ax.set_xlabel(f"easting (km, {crs})")
    ax.set_ylabel(f"northing (km, {crs})")
    ax.set_title(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
