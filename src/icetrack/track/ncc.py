"""Normalised cross-correlation surfaces of chip batches (Lewis 1995), shared by both kernels.

For a reference chip t (N×N, zero-mean) and a search window w (M×M, M = N + 2s):

    ncc(u, v) = Σ t(x) w(x+u) / ( ||t|| · sqrt(Σ_patch w² − (Σ_patch w)² / N²) )

The numerator of every lag comes from one product of real FFTs of size ≥ M (no
wrap-around for lags 0..2s), batched over chips and bands; the patch sums of w and w²
come from summed-area tables. Multi-band chips (B, K, N, N) — e.g. the two components
of an orientation image — correlate as one vector-valued image: numerators, chip
energies and window variances are summed over bands before normalising.

The FFTs run in float32 (6× faster than float64 here; the numerator's relative error,
~1e-6, is far below the texture's noise); the sums that are differenced (summed-area
tables) stay in float64, in compiled code, over the (2s+1)² lags only.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.fft as sfft

SNR_EXCLUDE_PX = 2  # ampcor leaves the peak's 5×5 neighbourhood out of the SNR's mean


def as_banded(a: np.ndarray) -> np.ndarray:
    """(B, N, N) → (B, 1, N, N); (B, K, N, N) unchanged."""
    return a[:, None] if a.ndim == 3 else a


def fft_size(m: int) -> int:
    """Smallest FFT length ≥ m whose factors are all ≤ 7: pocketfft is as fast on 7-smooth
    lengths as on 5-smooth ones (``next_fast_len``), and padding 28 to 30 costs 15 %."""
    size = m
    while True:
        rest = size
        for p in (2, 3, 5, 7):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return size
        size += 1


def ncc_surfaces(chips: np.ndarray, windows: np.ndarray, workers: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """NCC surfaces of chips (B[, K], N, N) inside windows (B[, K], M, M).

    Returns (surfaces (B, 2s+1, 2s+1) float64, iy, ix (integer peak), peak, snr), where
    the SNR is ampcor's: peak² over the mean of surface² outside the peak's 5×5 box.
    """
    chips, windows = as_banded(chips), as_banded(windows)
    n, m = chips.shape[-1], windows.shape[-1]
    size = fft_size(m)
    t, t_norm = _centred(np.ascontiguousarray(chips, dtype=np.float32))
    w = np.asarray(windows, dtype=np.float32)  # no copy when already float32
    lags = m - n + 1
    spectrum = sfft.rfft2(w, s=(size, size), workers=workers)
    # The chip fills only n of the size rows: transform those rows, then the columns.
    chip_rows = sfft.rfft(t, n=size, axis=-1, workers=workers)
    chip_spectrum = sfft.fft(chip_rows, n=size, axis=-2, workers=workers)
    spectrum *= np.conjugate(chip_spectrum, out=chip_spectrum)
    # Only lags 0 … 2s are wanted: inverse the columns, then only those rows.
    summed = spectrum[:, 0] if spectrum.shape[1] == 1 else spectrum.sum(axis=1)  # bands correlate as one vector image
    columns = sfft.ifft(summed, axis=-2, workers=workers)[:, :lags]
    num = sfft.irfft(columns, n=size, axis=-1, workers=workers)
    return _normalise(num, w, t_norm, n, lags)


@numba.njit(nogil=True, fastmath=True, cache=True)
def centre_chip(chip, out, means):  # pragma: no cover - compiled
    """Write ``chip`` (K, N, N) minus its per-band mean into ``out``, the means into
    ``means`` (K,); return the sum of squares of the result over all bands."""
    k_count, n = chip.shape[0], chip.shape[1]
    sq = 0.0
    for k in range(k_count):
        mean = 0.0
        for i in range(n):
            for j in range(n):
                mean += chip[k, i, j]
        mean /= n * n
        means[k] = mean
        for i in range(n):
            for j in range(n):
                v = chip[k, i, j] - mean
                out[k, i, j] = v
                sq += v * v
    return sq


@numba.njit(nogil=True, fastmath=True, cache=True)
def _centred(chips):  # pragma: no cover - compiled
    """Chips (B, K, N, N) minus their per-band mean (float32), and each chip's norm over bands."""
    out = np.empty_like(chips)
    norm = np.empty(chips.shape[0])
    means = np.empty(chips.shape[1], np.float32)
    for b in range(chips.shape[0]):
        norm[b] = np.sqrt(centre_chip(chips[b], out[b], means))
    return out, norm


@numba.njit(nogil=True, fastmath=True, cache=True)
def _normalise(num, windows, t_norm, n, lags):  # pragma: no cover - compiled
    b_count, k_count = windows.shape[0], windows.shape[1]
    m = windows.shape[2]
    out = np.zeros((b_count, lags, lags))
    iy = np.zeros(b_count, np.int64)
    ix = np.zeros(b_count, np.int64)
    peak = np.zeros(b_count)
    snr = np.zeros(b_count)
    inv_area = 1.0 / (n * n)
    for b in range(b_count):
        # Patch sums of w and w² by sliding sums (column sums over N rows, then a running
        # sum along the row): the summed-area tables of Lewis (1995) without storing them.
        var = np.zeros((lags, lags))
        col1 = np.empty(m)
        col2 = np.empty(m)
        for k in range(k_count):
            for j in range(m):
                a1 = 0.0
                a2 = 0.0
                for i in range(n):
                    v = np.float64(windows[b, k, i, j])
                    a1 += v
                    a2 += v * v
                col1[j] = a1
                col2[j] = a2
            for u in range(lags):
                p1 = 0.0
                p2 = 0.0
                for j in range(n):
                    p1 += col1[j]
                    p2 += col2[j]
                for v in range(lags):
                    var[u, v] += max(p2 - p1 * p1 * inv_area, 0.0)
                    if v + 1 < lags:
                        p1 += col1[v + n] - col1[v]
                        p2 += col2[v + n] - col2[v]
                if u + 1 < lags:
                    for j in range(m):
                        top = np.float64(windows[b, k, u, j])
                        bottom = np.float64(windows[b, k, u + n, j])
                        col1[j] += bottom - top
                        col2[j] += bottom * bottom - top * top
        best = -np.inf
        total = 0.0
        floor = 1e-12 * n * n * t_norm[b]
        for i in range(lags):
            for j in range(lags):
                denom = np.sqrt(var[i, j]) * t_norm[b]
                value = num[b, i, j] / denom if denom > floor else 0.0
                out[b, i, j] = value
                total += value * value
                if value > best:
                    best = value
                    iy[b] = i
                    ix[b] = j
        peak[b] = best
        near = 0.0
        count = 0
        for i in range(max(iy[b] - SNR_EXCLUDE_PX, 0), min(iy[b] + SNR_EXCLUDE_PX + 1, lags)):
            for j in range(max(ix[b] - SNR_EXCLUDE_PX, 0), min(ix[b] + SNR_EXCLUDE_PX + 1, lags)):
                near += out[b, i, j] ** 2
                count += 1
        mean_away = (total - near) / max(lags * lags - count, 1)
        snr[b] = best * best / mean_away if mean_away > 0 else np.inf
    return out, iy, ix, peak, snr
