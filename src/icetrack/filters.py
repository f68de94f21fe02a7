"""Step 4: filters that bring out trackable texture, NaN-aware.

Missing pixels (cloud, no data) are excluded from every local statistic by
normalised convolution — smooth(image·valid) / smooth(valid) — so they neither
leak into their neighbours nor ring at cloud edges, and they stay NaN afterwards.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage


def _masked_smooth(image: np.ndarray, smooth: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    valid = np.isfinite(image)
    num = smooth(np.where(valid, image, 0.0))
    den = smooth(valid.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 1e-3, num / den, np.nan)


def none(image: np.ndarray) -> np.ndarray:
    """The image as it is (float32)."""
    return image.astype(np.float32)


def gaussian_highpass(image: np.ndarray, sigma_px: float = 3.0) -> np.ndarray:
    """Image minus its Gaussian-smoothed self: removes illumination gradients and
    brightness offsets while keeping features smaller than ~sigma."""
    image = image.astype(np.float64)
    low = _masked_smooth(image, lambda a: ndimage.gaussian_filter(a, sigma_px, mode="nearest"))
    return (image - low).astype(np.float32)


def wallis(image: np.ndarray, window_px: int = 21, target_mean: float = 0.0, target_std: float = 1.0) -> np.ndarray:
    """Wallis filter: local mean and contrast forced to target values in a moving window,
    equalising texture between bright snow and shaded ice."""
    image = image.astype(np.float64)
    box = lambda a: ndimage.uniform_filter(a, window_px, mode="nearest")  # noqa: E731
    mean = _masked_smooth(image, box)
    var = _masked_smooth(image * image, box) - mean * mean
    std = np.sqrt(np.clip(var, 1e-12, None))
    return ((image - mean) / std * target_std + target_mean).astype(np.float32)


def laplacian_of_gaussian(image: np.ndarray, sigma_px: float = 1.5) -> np.ndarray:
    """Negative Laplacian of Gaussian: a band-pass that keeps blob-scale texture."""
    image = image.astype(np.float64)
    valid = np.isfinite(image)
    filled = np.where(valid, image, _masked_smooth(image, lambda a: ndimage.gaussian_filter(a, 4 * sigma_px)))
    filled = np.where(np.isfinite(filled), filled, np.nanmean(image) if valid.any() else 0.0)
    out = -ndimage.gaussian_laplace(filled, sigma_px, mode="nearest")
    return np.where(valid, out, np.nan).astype(np.float32)


FILTERS: dict[str, Callable[..., np.ndarray]] = {
    "none": none,
    "gaussian_hp": gaussian_highpass,
    "wallis": wallis,
    "log": laplacian_of_gaussian,
}


def apply_filter(image: np.ndarray, method: str, **params) -> np.ndarray:
    """Apply the filter named ``method`` (a key of :data:`FILTERS`) with its parameters."""
    if method not in FILTERS:
        raise ValueError(f"filter.method {method!r} is unknown; expected one of {sorted(FILTERS)}")
    return FILTERS[method](image, **params)
