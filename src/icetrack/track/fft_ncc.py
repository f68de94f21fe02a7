"""Normalised cross-correlation of chip batches through the FFT (Lewis 1995).

For a reference chip t (N×N, zero-mean) and a search window w (M×M, M = N + 2s):

    ncc(u, v) = Σ t(x) w(x+u) / ( ||t|| · sqrt(Σ_patch w² − (Σ_patch w)² / N²) )

The numerator of every lag comes from one product of real FFTs of size ≥ M (no
wrap-around for lags 0..2s); the patch sums of w and w² from summed-area tables.
Chips are processed in batches so the FFT runs on stacks, not one chip at a time.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from .subpixel import quadratic_peak_2d


def ncc_surfaces(chips: np.ndarray, windows: np.ndarray, workers: int = 1) -> np.ndarray:
    """NCC surfaces (B, 2s+1, 2s+1) for chips (B, N, N) inside windows (B, M, M)."""
    b, n, _ = chips.shape
    m = windows.shape[1]
    lags = m - n + 1
    size = sfft.next_fast_len(m, real=True)
    t = chips - chips.mean(axis=(1, 2), keepdims=True)
    t_norm = np.sqrt((t * t).sum(axis=(1, 2)))
    ft = sfft.rfft2(t, s=(size, size), workers=workers)
    fw = sfft.rfft2(windows, s=(size, size), workers=workers)
    num = sfft.irfft2(fw * ft.conj(), s=(size, size), workers=workers)[:, :lags, :lags]
    patch_sum = _patch_sums(windows, n)
    patch_sq = _patch_sums(windows * windows, n)
    var = np.maximum(patch_sq - patch_sum * patch_sum / (n * n), 0.0)
    denom = np.sqrt(var) * t_norm[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(denom > 1e-12 * n * n, num / denom, 0.0)
    return out


def _patch_sums(a: np.ndarray, n: int) -> np.ndarray:
    """Sums of every n×n patch of each (M×M) image in the batch: (B, M-n+1, M-n+1)."""
    s = np.zeros((a.shape[0], a.shape[1] + 1, a.shape[2] + 1), dtype=np.float64)
    np.cumsum(np.cumsum(a, axis=1, dtype=np.float64), axis=2, out=s[:, 1:, 1:])
    return s[:, n:, n:] - s[:, :-n, n:] - s[:, n:, :-n] + s[:, :-n, :-n]


def peak_snr(surfaces: np.ndarray, iy: np.ndarray, ix: np.ndarray, exclude: int = 2) -> np.ndarray:
    """ampcor's SNR: peak² over the mean of surface² outside a (2·exclude+1)² box at the peak."""
    b, h, w = surfaces.shape
    k = np.arange(b)
    sq = surfaces.astype(np.float64) ** 2
    total = sq.sum(axis=(1, 2))
    near = np.zeros(b)
    count = np.zeros(b)
    for dy in range(-exclude, exclude + 1):
        for dx in range(-exclude, exclude + 1):
            yy, xx = iy + dy, ix + dx
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            near += np.where(inside, sq[k, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0.0)
            count += inside
    mean_away = (total - near) / np.maximum(h * w - count, 1)
    peak = surfaces[k, iy, ix]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean_away > 0, peak * peak / mean_away, np.inf)


def track_batch(chips: np.ndarray, windows: np.ndarray, workers: int = 1) -> dict[str, np.ndarray]:
    """Offsets of each chip inside its window, relative to the window's centre lag.

    Returns dict of dy, dx (px), peak, snr, curv_y, curv_x for the batch.
    """
    surfaces = ncc_surfaces(chips, windows, workers)
    b, h, w = surfaces.shape
    flat = surfaces.reshape(b, -1).argmax(axis=1)
    iy, ix = np.divmod(flat, w)
    sy, sx, curv_y, curv_x = quadratic_peak_2d(surfaces, iy, ix)
    centre = (h - 1) / 2
    return {
        "dy": sy - centre,
        "dx": sx - centre,
        "peak": surfaces[np.arange(b), iy, ix],
        "snr": peak_snr(surfaces, iy, ix),
        "curv_y": curv_y,
        "curv_x": curv_x,
    }
