"""Direct (spatial-domain) NCC on a few lags around a start: the fine step of coarse-to-fine.

Once a coarse pass knows the integer peak to ±1 px, evaluating the normalised
cross-correlation at the 3×3 lags around it costs 9 chip-sized dot products — far less
than a full FFT search over (2s+1)² lags. :func:`hill_climb_ncc` does that in one fused,
compiled loop per chip: it evaluates the 3×3 lags around the start in one pass over the
chip, moves to the best one while it is not the centre, and returns the final 3×3
neighbourhood for the sub-pixel fit.

NCC per lag (u, v), chip t zero-mean over the chip (so Σ t = 0 and the window's mean
drops out of the numerator):

    ncc(u, v) = Σ t(x) w(x+u) / ( ||t|| · sqrt(Σ_patch w² − (Σ_patch w)² / N²) )

exactly the quantity :func:`icetrack.track.ncc.ncc_surfaces` computes by FFT.
"""

from __future__ import annotations

import numba
import numpy as np

from .ncc import centre_chip

MAX_CLIMB_STEPS = 6  # a coarse peak 1 px off needs 1 step; more means the coarse pass was wrong


def hill_climb_ncc(chips: np.ndarray, windows: np.ndarray, start_y: np.ndarray, start_x: np.ndarray,
                   max_steps: int = MAX_CLIMB_STEPS) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Local NCC maximum of each chip (B, K, N, N) in its window (B, K, M, M) by hill climbing.

    ``start_y/x`` are integer lags (the chip's top-left row/column in the window, 0 … M−N).
    Returns (iy, ix, z, converged): the integer peak lag, its 3×3 NCC neighbourhood
    (B, 3, 3; NaN where that lag falls outside the window) and whether the peak is an
    interior local maximum reached within ``max_steps`` moves.
    """
    return _climb(np.ascontiguousarray(chips, dtype=np.float32), np.ascontiguousarray(windows, dtype=np.float32),
                  np.asarray(start_y, np.int64), np.asarray(start_x, np.int64), max_steps)


@numba.njit(nogil=True, fastmath=True, cache=True)
def _ncc_3x3(t, t_norm, offset, windows, b, cu, cv, acc, patch, col1, col2, out):  # pragma: no cover - compiled
    """NCC of zero-mean chip t (K, N, N) at the 3×3 lags around (cu, cv) of window b, into out.

    One pass over the chip for all nine lags, accumulating per column (so the inner loop
    is a plain vectorised multiply-add, with one horizontal sum per lag at the end, not
    one per row); the patch sums of w and w² by sliding column sums over the
    (N+2)² region. ``offset`` (per band, the chip's mean) is taken off every window
    pixel so the float32 sums hold the texture, not the brightness (12-bit DNs).
    ``acc`` (9, N), ``patch`` (N+2, N+2), ``col1/col2`` (N+2) are scratch buffers.
    """
    k_count, n = t.shape[0], t.shape[1]
    num = np.zeros(9)
    var = np.zeros(9)
    for k in range(k_count):
        off = offset[k]
        # A local copy of the (N+2)² patch: with the window's runtime offsets folded in
        # once, the loops below vectorise (2.5× faster than indexing the window, measured).
        for i in range(n + 2):
            row = windows[b, k, cu - 1 + i, cv - 1:cv + n + 1]
            for j in range(n + 2):
                patch[i, j] = row[j] - off
        acc[:, :] = 0.0
        for i in range(n):
            for du in range(3):
                for dv in range(3):
                    lag = du * 3 + dv
                    for j in range(n):
                        acc[lag, j] += t[k, i, j] * patch[du + i, dv + j]
        for lag in range(9):
            total = 0.0
            for j in range(n):
                total += acc[lag, j]
            num[lag] += total
        for j in range(n + 2):
            col1[j] = 0.0
            col2[j] = 0.0
        for du in range(3):
            if du == 0:
                for i in range(n):
                    for j in range(n + 2):
                        w = np.float64(patch[i, j])
                        col1[j] += w
                        col2[j] += w * w
            else:  # slide the column sums down one row
                for j in range(n + 2):
                    top = np.float64(patch[du - 1, j])
                    bottom = np.float64(patch[du - 1 + n, j])
                    col1[j] += bottom - top
                    col2[j] += bottom * bottom - top * top
            for dv in range(3):
                p1 = 0.0
                p2 = 0.0
                for j in range(n):
                    p1 += col1[dv + j]
                    p2 += col2[dv + j]
                var[du * 3 + dv] += max(p2 - p1 * p1 / (n * n), 0.0)
    for lag in range(9):
        denom = np.sqrt(var[lag]) * t_norm
        out[lag // 3, lag % 3] = num[lag] / denom if denom > 1e-12 * t_norm else 0.0


@numba.njit(nogil=True, fastmath=True, cache=True)
def _climb(chips, windows, start_y, start_x, max_steps):  # pragma: no cover - compiled
    b_count, k_count, n = chips.shape[0], chips.shape[1], chips.shape[2]
    lags = windows.shape[2] - n + 1
    out_y = np.zeros(b_count, np.int64)
    out_x = np.zeros(b_count, np.int64)
    z = np.full((b_count, 3, 3), np.nan)
    converged = np.zeros(b_count, np.bool_)
    for b in range(b_count):
        t = np.empty((k_count, n, n), np.float32)
        offset = np.empty(k_count, np.float32)
        t_norm = np.sqrt(centre_chip(chips[b], t, offset))
        acc = np.empty((9, n), np.float32)
        patch = np.empty((n + 2, n + 2), np.float32)
        col1 = np.empty(n + 2)
        col2 = np.empty(n + 2)
        zz = np.empty((3, 3))
        # The 3×3 around the centre must lie inside the window's lags.
        cy = min(max(start_y[b], 1), lags - 2)
        cx = min(max(start_x[b], 1), lags - 2)
        for _ in range(max_steps + 1):
            _ncc_3x3(t, t_norm, offset, windows, b, cy, cx, acc, patch, col1, col2, zz)
            best = -np.inf
            ay = 1
            ax = 1
            for du in range(3):
                for dv in range(3):
                    if zz[du, dv] > best:
                        best = zz[du, dv]
                        ay = du
                        ax = dv
            if ay == 1 and ax == 1:
                converged[b] = True
                break
            ny = cy + ay - 1
            nx = cx + ax - 1
            if ny < 1 or nx < 1 or ny > lags - 2 or nx > lags - 2:
                break  # the maximum is on the search window's edge: not a peak
            cy = ny
            cx = nx
        out_y[b] = cy
        out_x[b] = cx
        z[b] = zz
    return out_y, out_x, z, converged
