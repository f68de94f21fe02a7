"""Direct (spatial-domain) NCC on a few lags around a start: the fine step of coarse-to-fine.

Once a coarse pass knows the integer peak to ±1 px, evaluating the normalised
cross-correlation at the 3×3 lags around it costs 9 chip-sized dot products — far less
than a full FFT search over (2s+1)² lags. :func:`hill_climb_ncc` does that in one fused,
compiled loop per chip: it evaluates the 3×3 lags around the start, moves to the best
one while it is not the centre (evaluated lags are cached, so a move costs 3–5 new
lags), and returns the final 3×3 neighbourhood for the sub-pixel fit.

NCC per lag (u, v), chip t zero-mean over the chip (so Σ t = 0 and the window's mean
drops out of the numerator):

    ncc(u, v) = Σ t(x) w(x+u) / ( ||t|| · sqrt(Σ_patch w² − (Σ_patch w)² / N²) )

exactly the quantity :func:`icetrack.track.ncc.ncc_surfaces` computes by FFT.
"""

from __future__ import annotations

import numba
import numpy as np

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


@numba.njit(fastmath=True, cache=True)
def _ncc_at(t, t_norm, offset, windows, b, u, v):  # pragma: no cover - compiled
    """NCC of zero-mean chip t (K, N, N) at lag (u, v) of window b.

    ``offset`` (per band, the chip's mean) is taken off every window pixel first so the
    float32 patch sums hold the texture, not the brightness (12-bit DNs: Σw² ~ 1e10)."""
    k_count, n = t.shape[0], t.shape[1]
    num = 0.0
    var = 0.0
    for k in range(k_count):
        s1 = np.float32(0.0)
        s2 = np.float32(0.0)
        acc = np.float32(0.0)
        for i in range(n):
            row = windows[b, k, u + i]
            for j in range(n):
                w = row[v + j] - offset[k]
                acc += t[k, i, j] * w
                s1 += w
                s2 += w * w
        num += acc
        var += max(np.float64(s2) - np.float64(s1) * s1 / (n * n), 0.0)
    denom = np.sqrt(var) * t_norm
    return num / denom if denom > 1e-12 * t_norm else 0.0


@numba.njit(parallel=True, cache=True)
def _climb(chips, windows, start_y, start_x, max_steps):  # pragma: no cover - compiled
    b_count, k_count, n = chips.shape[0], chips.shape[1], chips.shape[2]
    lags = windows.shape[2] - n + 1
    out_y = np.zeros(b_count, np.int64)
    out_x = np.zeros(b_count, np.int64)
    z = np.full((b_count, 3, 3), np.nan)
    converged = np.zeros(b_count, np.bool_)
    for b in numba.prange(b_count):
        t = np.empty((k_count, n, n), np.float32)
        offset = np.empty(k_count, np.float32)
        sq = 0.0
        for k in range(k_count):
            mean = 0.0
            for i in range(n):
                for j in range(n):
                    mean += chips[b, k, i, j]
            mean /= n * n
            offset[k] = mean
            for i in range(n):
                for j in range(n):
                    v = chips[b, k, i, j] - mean
                    t[k, i, j] = v
                    sq += v * v
        t_norm = np.sqrt(sq)
        cache = np.full((lags, lags), np.nan)
        cy = min(max(start_y[b], 0), lags - 1)
        cx = min(max(start_x[b], 0), lags - 1)
        for _ in range(max_steps + 1):
            best = -np.inf
            by = cy
            bx = cx
            for du in range(-1, 2):
                for dv in range(-1, 2):
                    u = cy + du
                    v = cx + dv
                    if u < 0 or v < 0 or u >= lags or v >= lags:
                        continue
                    if np.isnan(cache[u, v]):
                        cache[u, v] = _ncc_at(t, t_norm, offset, windows, b, u, v)
                    if cache[u, v] > best:
                        best = cache[u, v]
                        by = u
                        bx = v
            if by == cy and bx == cx:
                converged[b] = 0 < cy < lags - 1 and 0 < cx < lags - 1
                break
            cy = by
            cx = bx
        out_y[b] = cy
        out_x[b] = cx
        for du in range(-1, 2):
            for dv in range(-1, 2):
                u = cy + du
                v = cx + dv
                if 0 <= u < lags and 0 <= v < lags:
                    z[b, du + 1, dv + 1] = cache[u, v]
    return out_y, out_x, z, converged
