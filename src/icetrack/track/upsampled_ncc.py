"""NCC on a fine lag grid (step 1/factor px) over a few pixels, by matrix-multiply DFT.

ampcor's level 2 oversamples chip and patch ×2 and correlates them again. For real
images the correlation of the ×2 band-limited signals is itself band-limited, so its
value at a fractional lag τ can be read off the cross-power spectrum of the chip
(zero-padded) and the patch directly: ``num(τ) = Re Σ_k conj(T_k) W_k e^{2πi k·τ/L}``
— the "zero-padded product of spectra" restricted to the wanted lags by two small
matrix products per chip (Guizar-Sicairos, Thurman & Fienup 2008, Opt. Lett. 33:156),
without transforming the oversampled (4× larger) signals.

The normalisation is evaluated the same way: the patch's local sum and energy under the
chip (a box of N×N) at lag τ are the box correlations of w and w², i.e. the spectra of w
and w² times the (separable, precomputed) box spectrum, evaluated at the same lags. So
each lag's NCC is ``num / (||t|| · sqrt(Σ w² − (Σ w)² / N²))`` at that lag, as in
:mod:`icetrack.track.ncc` on the integer grid. On whole-pixel lags this is exactly
that NCC (the circular correlation of an N chip in a P patch is exact for lags 0 … P − N);
between them it differs from ampcor's own ×2 oversampling + FFT NCC by < 0.04 on the
benchmark's chips (the two periodic interpolations' edge effects), and the benchmark's
offsets are as accurate or more (docs/kernels.md).

FFTs in float32 (pocketfft), the evaluation compiled with the GIL released.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np
import scipy.fft as sfft

from .ncc import fft_size


def fine_ncc_surfaces(chips: np.ndarray, windows: np.ndarray, top: np.ndarray, left: np.ndarray, patch_px: int,
                      factor: int) -> np.ndarray:
    """NCC of chips (B, K, N, N) in the patches of P = ``patch_px`` px whose top-left
    corners are (top, left) in the windows (B, K, M, M), at lags 0, 1/factor, …, P − N px
    from that corner along both axes: surfaces (B, G, G) float64, G = factor·(P − N) + 1.
    Bands correlate as one vector-valued image (numerators and energies summed over bands)."""
    n, p = chips.shape[-1], patch_px
    length = fft_size(p)  # the circular correlation of an N chip in a P patch is exact at lags 0 … P − N
    planes, t_norm = _fft_inputs(np.ascontiguousarray(chips, dtype=np.float32),
                                 np.ascontiguousarray(windows, dtype=np.float32),
                                 np.asarray(top, np.int64), np.asarray(left, np.int64), p, length)
    spectra = sfft.rfft2(planes, overwrite_x=True, workers=1)
    return _evaluate_ncc(spectra, t_norm, *_dft_matrices(n, length, p - n, factor), n)


@lru_cache(maxsize=None)
def _dft_matrices(n: int, length: int, span_px: int, factor: int) -> tuple[np.ndarray, ...]:
    """Inverse-DFT rows (G, L) and columns (L//2 + 1, G) evaluating a real signal's
    ``rfft2`` spectrum (L, L//2 + 1) at lags k/factor, k = 0 … factor·span_px, plain and
    with the N-box's spectrum folded in (for the patch's local sums)."""
    lags = np.arange(factor * span_px + 1) / factor
    signed = np.fft.fftfreq(length, 1 / length)  # band-limited interpolation needs the symmetric frequencies
    rows = np.exp(2j * np.pi * np.outer(lags, signed) / length)
    cols = 2 * np.exp(2j * np.pi * np.outer(lags, np.arange(length // 2 + 1)) / length)  # + the conjugate half
    cols[:, 0] = 1
    if length % 2 == 0:  # the Nyquist row/column stands for ±L/2: their mean, a cosine
        rows[:, length // 2] = np.cos(np.pi * lags)
        cols[:, -1] = np.cos(np.pi * lags)
    cols /= length * length
    box = np.conj(np.fft.fft(np.ones(n), length))  # correlation with an N-box of ones
    box_rows, box_cols = rows * box[None, :], cols * box[None, :length // 2 + 1]
    return tuple(np.ascontiguousarray(a, dtype=np.complex64) for a in (rows, box_rows, cols.T, box_cols.T))


@numba.njit(nogil=True, fastmath=True, cache=True)
def _fft_inputs(chips, windows, top, left, p, length):  # pragma: no cover - compiled
    """Per chip and band, three zero-padded L×L planes: the centred chip, the patch (cut
    from the window here: numpy's fancy indexing of the patches cost more than their
    FFTs) and its square; and each chip's norm over bands."""
    b_count, k_count, n = chips.shape[0], chips.shape[1], chips.shape[2]
    out = np.zeros((b_count, 3 * k_count, length, length), np.float32)
    norm = np.empty(b_count)
    for b in range(b_count):
        sq = 0.0
        for k in range(k_count):
            mean = 0.0
            for i in range(n):
                for j in range(n):
                    mean += chips[b, k, i, j]
            mean /= n * n
            for i in range(n):
                for j in range(n):
                    v = chips[b, k, i, j] - mean
                    out[b, 3 * k, i, j] = v
                    sq += v * v
            for i in range(p):
                for j in range(p):
                    v = windows[b, k, top[b] + i, left[b] + j]
                    out[b, 3 * k + 1, i, j] = v
                    out[b, 3 * k + 2, i, j] = v * v
        norm[b] = np.sqrt(sq)
    return out, norm


@numba.njit(nogil=True, fastmath=True, cache=True)
def _evaluate_ncc(spectra, t_norm, rows, box_rows, cols, box_cols, n):  # pragma: no cover - compiled
    b_count, planes, length, half = spectra.shape
    k_count = planes // 3
    g = rows.shape[0]
    out = np.zeros((b_count, g, g))
    cross = np.empty((length, half), np.complex64)
    var = np.empty((g, g))
    inv_area = 1.0 / (n * n)
    for b in range(b_count):
        cross[:, :] = 0
        var[:, :] = 0
        for k in range(k_count):
            for i in range(length):
                for j in range(half):
                    cross[i, j] += np.conj(spectra[b, 3 * k, i, j]) * spectra[b, 3 * k + 1, i, j]
            local_sum = np.dot(np.dot(box_rows, spectra[b, 3 * k + 1]), box_cols)
            local_energy = np.dot(np.dot(box_rows, spectra[b, 3 * k + 2]), box_cols)
            for u in range(g):
                for v in range(g):
                    var[u, v] += max(local_energy[u, v].real - local_sum[u, v].real ** 2 * inv_area, 0.0)
        num = np.dot(np.dot(rows, cross), cols)
        floor = 1e-12 * n * n * t_norm[b]
        for u in range(g):
            for v in range(g):
                denom = np.sqrt(var[u, v]) * t_norm[b]
                out[b, u, v] = num[u, v].real / denom if denom > floor else 0.0
    return out
