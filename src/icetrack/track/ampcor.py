"""The ``ampcor`` kernel: ISCE / ROI_PAC ampcor's three levels, batched.

1. **Integer level** — the NCC peak over the whole search window
   (:func:`icetrack.track.fft_ncc.integer_peak`: 2× coarse FFT NCC and a full-resolution
   climb, with the full FFT search as fallback; or the full search on every chip with
   ``coarse_to_fine=False``, exactly ampcor's level 1).
2. **Oversampled level** — the NCC of the reference chip and the secondary patch
   reaching ``±OVERSAMPLED_SEARCH_PX`` around the integer peak, both oversampled ×2
   (ampcor's raw-data oversampling), on a 0.5-px lag grid. For real images the
   correlation of the ×2 band-limited signals is the band-limited interpolation of the
   chip–patch correlation, so it is read off their (36-px) spectra at the 0.5-px lags by
   small matrix-multiply DFTs (:mod:`icetrack.track.upsampled_ncc`, Guizar-Sicairos
   2008), the patch's local mean and energy likewise, instead of transforming the
   oversampled (4× larger) signals: the same surface (exact on whole-pixel lags, within
   ~0.02 of ampcor's between them) at a quarter of the cost.
3. **Zoom** — that surface is zoomed ×``oversampling_factor`` by windowed-sinc
   (Lanczos) interpolation on the ±1-sample neighbourhood of its peak only (two small
   matrix products per chip): with the ×2 level the offsets resolve to
   1 / (2 · oversampling_factor) px (1/32 px at ampcor's default 16), and a quadratic fit
   on the zoomed maximum's 3×3 neighbourhood places the peak between zoom samples.

SNR is ampcor's (peak² over the mean of the squared surface away from the peak, from
level 1); the curvature of the level-2 surface at its peak gives the error estimate.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np
import scipy.fft as sfft

from .fft_ncc import integer_peak
from .ncc import as_banded
from .subpixel import quadratic_fit_3x3
from .upsampled_ncc import fine_ncc_surfaces

RAW_OVERSAMPLING = 2  # ampcor's rawDataOversamplingFactor: the correlation has twice the images' bandwidth
OVERSAMPLED_SEARCH_PX = 2  # ± search of level 2 around the integer peak (px); 2·(N + 2·2) is a fast FFT length for N = 32, 64
DEFAULT_OVERSAMPLING = 16  # ampcor's corrSurfaceOverSamplingFactor


def track_batch(chips: np.ndarray, windows: np.ndarray, workers: int = 1, oversampling_factor: int = DEFAULT_OVERSAMPLING,
                coarse_to_fine: bool = True) -> dict[str, np.ndarray]:
    """Offsets of each chip (B[, K], N, N) inside its window (B[, K], M, M), relative to
    the window's centre lag (px), by ampcor's three levels. Same contract as
    :func:`icetrack.track.fft_ncc.track_batch`: dy, dx (px), peak, snr, curv_y, curv_x."""
    chips, windows = as_banded(chips), as_banded(windows)
    b_count, n = chips.shape[0], chips.shape[2]
    m = windows.shape[-1]
    lags = m - n + 1
    centre = (lags - 1) / 2
    iy, ix, _, peak, snr = integer_peak(chips, windows, workers, coarse_to_fine)

    # Level 2: the secondary patch reaching ±r around the integer peak; the NCC of the ×2
    # oversampled signals on a 0.5-px lag grid, read off the chip's and patch's spectra
    # (upsampled_ncc: the same band-limited correlation without transforming 4× the pixels).
    r = OVERSAMPLED_SEARCH_PX
    usable = (iy >= r) & (ix >= r) & (iy + n + r <= m) & (ix + n + r <= m)
    top, left = np.clip(iy - r, 0, m - n - 2 * r), np.clip(ix - r, 0, m - n - 2 * r)
    surfaces = fine_ncc_surfaces(chips, windows, top, left, n + 2 * r, RAW_OVERSAMPLING)
    s2 = surfaces.shape[-1]
    best = surfaces.reshape(b_count, -1).argmax(axis=1)
    sy2, sx2 = best // s2, best % s2
    peak2 = surfaces.reshape(b_count, -1)[np.arange(b_count), best]

    # Level 3: zoom the surface around its peak; offsets in level-2 samples (0.5 px).
    zy, zx = zoom_peak(surfaces, sy2, sx2, oversampling_factor)
    z3 = surfaces[np.arange(b_count)[:, None, None], np.clip(sy2[:, None, None] + np.arange(-1, 2)[None, :, None], 0, s2 - 1),
                  np.clip(sx2[:, None, None] + np.arange(-1, 2)[None, None, :], 0, s2 - 1)]
    _, _, curv_y, curv_x = quadratic_fit_3x3(z3)
    inner = usable & (sy2 >= 1) & (sy2 <= s2 - 2) & (sx2 >= 1) & (sx2 <= s2 - 2)
    dy = np.where(inner, top + zy / RAW_OVERSAMPLING - centre, np.nan)
    dx = np.where(inner, left + zx / RAW_OVERSAMPLING - centre, np.nan)
    scale = RAW_OVERSAMPLING ** 2  # curvature per (0.5 px)² → per px²
    # ampcor reports the peak of the oversampled correlation (level 2), where there is one.
    return {"dy": dy, "dx": dx, "peak": np.where(inner, peak2, peak), "snr": snr,
            "curv_y": curv_y * scale, "curv_x": curv_x * scale}


def oversample(a: np.ndarray, factor: int, workers: int = 1) -> np.ndarray:
    """Band-limited ×``factor`` oversampling of the last two axes by FFT zero-padding.

    ampcor's own raw-data oversampling. The kernel's level 2 no longer transforms the
    oversampled signals (see :mod:`icetrack.track.upsampled_ncc`); this stays as the
    reference it is tested against.

    Sample (i, j) of the output lies at input position (i / factor, j / factor), so an
    input of N samples gives factor·N samples spanning the same N px."""
    h, w = a.shape[-2:]
    spectrum = sfft.rfft2(a.astype(np.float32), workers=workers)
    if w % 2 == 0:  # the Nyquist column becomes a regular frequency: split it between ±w/2
        spectrum[..., -1] *= 0.5
    big_h = factor * h
    padded = np.zeros(a.shape[:-2] + (big_h, factor * w // 2 + 1), dtype=spectrum.dtype)
    cols = spectrum.shape[-1]
    pos = (h + 1) // 2  # rows 0 … pos−1 are non-negative frequencies
    padded[..., :pos, :cols] = spectrum[..., :pos, :]
    padded[..., big_h - (h - pos):, :cols] = spectrum[..., pos:, :]
    if h % 2 == 0:  # the Nyquist row likewise, between ±h/2
        padded[..., big_h - h // 2, :cols] *= 0.5
        padded[..., h // 2, :cols] = padded[..., big_h - h // 2, :cols]
    return sfft.irfft2(padded, s=(big_h, factor * w), workers=workers).astype(np.float32) * (factor * factor)


def zoom_peak(surfaces: np.ndarray, iy: np.ndarray, ix: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Peak of each surface (B, L, L) to 1/``factor`` sample and finer, by sinc zoom.

    The surface is interpolated with a Lanczos-``ZOOM_LANCZOS`` (windowed sinc) kernel on a
    grid of step 1/factor over ±1 sample around its integer peak (iy, ix) — 2·factor + 1
    points per axis, as two small matrix products per chip (compiled) — instead of
    zero-padding a window's spectrum factor-fold (periodic, so it rings at the window's
    edges). A 2-D quadratic fit on the zoomed maximum's 3×3 neighbourhood then places the
    peak between zoom samples. Returns the peak position (B,) in surface samples.
    """
    weights = _lanczos_table(surfaces.shape[-1], int(factor), ZOOM_LANCZOS)
    gy, gx, z = _zoom(np.ascontiguousarray(surfaces, dtype=np.float64), np.asarray(iy, np.int64),
                      np.asarray(ix, np.int64), weights)
    oy, ox, _, _ = quadratic_fit_3x3(z)
    g = 2 * factor + 1
    inside_y = (gy >= 1) & (gy <= g - 2)
    inside_x = (gx >= 1) & (gx <= g - 2)
    fy = np.where(np.isfinite(oy) & inside_y, gy + np.nan_to_num(oy), gy)
    fx = np.where(np.isfinite(ox) & inside_x, gx + np.nan_to_num(ox), gx)
    return iy + (fy - factor) / factor, ix + (fx - factor) / factor


ZOOM_LANCZOS = 4  # 8-tap windowed sinc


@lru_cache(maxsize=None)
def _lanczos_table(length: int, factor: int, a: int) -> np.ndarray:
    """The zoom's weights (length, 2·factor + 1, length) for every possible peak sample:
    computed once (their sines cost more than the zoom itself), read-only."""
    table = np.stack([_lanczos_rows(np.float64(c), factor, length, a) for c in range(length)])
    table.flags.writeable = False
    return table


@numba.njit(nogil=True, cache=True)
def _lanczos_rows(centre, factor, length, a):  # pragma: no cover - compiled
    """Row-normalised Lanczos-a weights (2·factor+1, length) at centre + k/factor, k = −factor … factor."""
    g = 2 * factor + 1
    w = np.zeros((g, length))
    for r in range(g):
        pos = centre + (r - factor) / factor
        total = 0.0
        for tap in range(max(0, int(np.floor(pos)) - a + 1), min(length, int(np.floor(pos)) + a + 1)):
            x = pos - tap
            if x == 0.0:
                v = 1.0
            elif abs(x) < a:
                px = np.pi * x
                v = a * np.sin(px) * np.sin(px / a) / (px * px)
            else:
                v = 0.0
            w[r, tap] = v
            total += v
        if total != 0.0:
            for tap in range(length):
                w[r, tap] /= total
    return w


@numba.njit(nogil=True, cache=True)
def _zoom(surfaces, iy, ix, weights):  # pragma: no cover - compiled
    b_count = surfaces.shape[0]
    g = weights.shape[1]
    factor = (g - 1) // 2
    out_y = np.zeros(b_count, np.int64)
    out_x = np.zeros(b_count, np.int64)
    z = np.full((b_count, 3, 3), np.nan)
    for b in range(b_count):
        zoomed = weights[iy[b]] @ surfaces[b] @ weights[ix[b]].T
        best = -np.inf
        by = factor
        bx = factor
        for r in range(g):
            for c in range(g):
                if zoomed[r, c] > best:
                    best = zoomed[r, c]
                    by = r
                    bx = c
        out_y[b] = by
        out_x[b] = bx
        cy = min(max(by, 1), g - 2)
        cx = min(max(bx, 1), g - 2)
        for r in range(3):
            for c in range(3):
                z[b, r, c] = zoomed[cy - 1 + r, cx - 1 + c]
    return out_y, out_x, z
