"""Step 4: filters that bring out trackable texture, NaN-aware.

Every filter takes a 2-D image (any float units, NaN = missing: cloud, no data) and
returns float32 on the same grid. Missing pixels are excluded from every local
statistic by normalised convolution — smooth(image·valid) / smooth(valid) — so they
neither leak into their neighbours nor make the filter ring at cloud edges, and they
stay NaN afterwards. Outputs are unitless (image units for ``none``/``gaussian_hp``/
``log``, target units for ``wallis``, unit vectors for ``orientation``).

Why filter at all: the correlation coefficient is blind to a gain and offset that are
constant over a chip, but not to illumination that changes *inside* a chip (shadows,
haze gradients, a different sun angle on undulating ice), nor to a contrast change that
varies across it. Removing the low frequencies (high-pass, LoG), equalising local
contrast (Wallis) or keeping only the direction of the gradient (orientation) leaves
the surface texture that moves with the ice.
"""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np
from scipy import ndimage

# Below this share of valid weight under a smoothing kernel, a local statistic is not
# trusted (NaN): it would rest on a handful of pixels at a cloud's edge.
_MIN_WEIGHT = 1e-3


def _masked_smooth(image: np.ndarray, smooth: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Normalised convolution: ``smooth`` applied to the valid pixels only (NaN elsewhere
    if too little valid weight is under the kernel)."""
    # In the image's own precision, one temporary at a time (``smooth`` may work in place on
    # the arrays made here): a 10 980² scene is 0.5 GB per float32 copy.
    valid = np.isfinite(image)
    den = smooth(valid.astype(image.dtype))
    del valid
    num = smooth(np.nan_to_num(image, nan=0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        num /= den
    num[~(den > _MIN_WEIGHT)] = np.nan
    return num


def _gaussian(sigma_px: float) -> Callable[[np.ndarray], np.ndarray]:
    # In place (output=a): scipy filters line by line through a buffer, and every caller
    # passes an array of its own.
    return lambda a: ndimage.gaussian_filter(a, sigma_px, mode="nearest", output=a)


def none(image: np.ndarray) -> np.ndarray:
    """The image as it is (float32)."""
    return image.astype(np.float32)


def gaussian_highpass(image: np.ndarray, sigma_px: float = 3.0) -> np.ndarray:
    """Image minus its (NaN-aware) Gaussian-smoothed self.

    Removes illumination gradients and brightness offsets at scales above ~``sigma_px``
    (px) while keeping the finer features that move with the ice.
    """
    # float32 is ample (scipy smooths each line in double) and halves the peak memory.
    image = np.asarray(image, dtype=np.float32)
    low = _masked_smooth(image, _gaussian(sigma_px))
    np.subtract(image, low, out=low)
    return low


def wallis(image: np.ndarray, window_px: int = 21, target_mean: float = 0.0, target_std: float = 1.0) -> np.ndarray:
    """Wallis filter: the local mean and standard deviation in a ``window_px`` box are
    forced to ``target_mean`` and ``target_std``, equalising texture between bright snow
    and shaded ice (contrast changes between dates no longer weight the chip unevenly)."""
    image = image.astype(np.float64)
    box = lambda a: ndimage.uniform_filter(a, window_px, mode="nearest")  # noqa: E731
    mean = _masked_smooth(image, box)
    # Variance of the residual (not E[x²] − E[x]²): no cancellation on bright images.
    var = _masked_smooth((image - mean) ** 2, box)
    # The floor keeps featureless (saturated) windows from being blown up into noise.
    floor = 1e-6 * np.nanmedian(var) if np.isfinite(var).any() else 1e-12
    std = np.sqrt(np.clip(var, max(floor, 1e-12), None))
    return ((image - mean) / std * target_std + target_mean).astype(np.float32)


def laplacian_of_gaussian(image: np.ndarray, sigma_px: float = 1.5) -> np.ndarray:
    """Negative Laplacian of Gaussian, a band-pass that keeps blob-scale texture (~``sigma_px``).

    Computed as −∇²(G_σ ∗ f) with G_σ ∗ f from normalised convolution and the 5-point
    discrete Laplacian, so missing pixels contribute nothing and the edge of a cloud is
    not a step for the Laplacian to ring on.
    """
    image = image.astype(np.float64)
    valid = np.isfinite(image)
    smooth = _masked_smooth(image, _gaussian(sigma_px))
    # The Laplacian stencil needs its 4 neighbours; extend the smoothed image by one
    # pixel into the mask with its nearest valid value (no step, no overshoot).
    filled = _fill_nearest(smooth)
    lap = ndimage.laplace(filled, mode="nearest")
    return np.where(valid, -lap, np.nan).astype(np.float32)


def orientation(image: np.ndarray, sigma_px: float = 0.0) -> np.ndarray:
    """Orientation image (Fahnestock et al. 2016; Heid & Kääb 2012): the unit vector of the
    intensity gradient, ``(cos θ, sin θ)`` with θ = atan2(∂f/∂y, ∂f/∂x).

    Only the direction of the gradient survives, so any monotonic change of brightness
    and contrast between dates leaves the image unchanged. Returns a (2, H, W) float32
    array: band 0 = cos θ, band 1 = sin θ, derivatives by central differences along
    columns (x) and rows (y), after an optional NaN-aware Gaussian pre-smoothing of
    ``sigma_px`` px (0 = none, as Fahnestock et al.). Both bands are 0 where the gradient
    is ~0 (saturated or flat areas carry no direction) or where the 3-point stencil
    touches a missing pixel (a cloud's edge is not texture); NaN on missing pixels, so
    they stay masked for the tracker's valid-pixel test.
    """
    image = image.astype(np.float64)
    valid = np.isfinite(image)
    f = _masked_smooth(image, _gaussian(sigma_px)) if sigma_px > 0 else image
    gy, gx = np.gradient(f)  # NaN wherever the stencil reaches a missing pixel
    mag = np.hypot(gx, gy)
    finite = np.isfinite(mag)
    # "~0": below a millionth of the typical gradient (exactly 0 on saturated snow).
    tiny = 1e-6 * (np.median(mag[finite]) if finite.any() else 0.0)
    ok = finite & (mag > max(tiny, 1e-12))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(ok, gx / mag, 0.0)
        s = np.where(ok, gy / mag, 0.0)
    out = np.stack([c, s]).astype(np.float32)
    out[:, ~valid] = np.nan
    return out


def _fill_nearest(a: np.ndarray) -> np.ndarray:
    """``a`` with NaNs replaced by the nearest finite value (unchanged if none is finite)."""
    bad = ~np.isfinite(a)
    if not bad.any() or bad.all():
        return a
    idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return a[tuple(idx)]


FILTERS: dict[str, Callable[..., np.ndarray]] = {
    "none": none,
    "gaussian_hp": gaussian_highpass,
    "wallis": wallis,
    "log": laplacian_of_gaussian,
    "orientation": orientation,
}

#: Filters whose output has several bands (B, H, W); the others return (H, W).
MULTIBAND = {"orientation": ["cos of gradient direction", "sin of gradient direction"]}


def apply_filter(image: np.ndarray, method: str, **params) -> np.ndarray:
    """Apply the filter named ``method`` (a key of :data:`FILTERS`) with its parameters.

    Returns (H, W) float32, or (B, H, W) for the multi-band filters of :data:`MULTIBAND`.
    """
    if method not in FILTERS:
        raise ValueError(f"filter.method {method!r} is unknown; expected one of {sorted(FILTERS)}")
    if image.ndim != 2:
        raise ValueError(f"filter input must be one band (H, W), got shape {image.shape}")
    try:
        inspect.signature(FILTERS[method]).bind(image, **params)
    except TypeError as error:
        raise ValueError(f"filter.{method}: bad parameters {params}: {error}") from None
    return FILTERS[method](image, **params)


def band_descriptions(method: str) -> list[str]:
    """Band descriptions of a filter's output, for the GeoTIFF written by the filter step."""
    return [f"{d} ({method})" for d in MULTIBAND[method]] if method in MULTIBAND else [f"filtered ({method})"]
