"""``track_pair``: the one function the workflow and notebooks call to track two images."""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import ampcor, fft_ncc
from .result import OffsetField, point_grid

# A kernel maps (chips (B,N,N), windows (B,M,M), workers) to per-chip dy, dx, peak,
# snr, curv_y, curv_x. New kernels register here and get blocks, priors, NaN handling
# and georeferencing from ``track_pair`` for free.
KERNELS: dict[str, Callable[..., dict[str, np.ndarray]]] = {"fft_ncc": fft_ncc.track_batch,
                                                            "ampcor": ampcor.track_batch}

MIN_VALID_FRACTION = 0.9  # chips with more missing (cloud/NaN) pixels are not tracked


def track_pair(
    ref: np.ndarray,
    sec: np.ndarray,
    chip_px: int = 32,
    search_px: int = 12,
    step_px: int = 16,
    method: str = "fft_ncc",
    prior_dx: np.ndarray | None = None,
    prior_dy: np.ndarray | None = None,
    workers: int = 1,
    block_points: int = 256,
    progress: Callable[[int], None] | None = None,
) -> OffsetField:
    """Track ``sec`` against ``ref`` on a regular grid of chips.

    Parameters
    ----------
    ref, sec : 2-D float arrays on the same grid; NaN marks missing pixels (cloud, no data).
    chip_px : reference chip size (px). step_px : spacing of chip positions (px).
    search_px : the search window reaches ±search_px around the prior offset.
    method : a key of :data:`KERNELS`.
    prior_dx, prior_dy : optional integer-rounded prior offsets per point (px), shape
        of the point grid, e.g. from a coarser pass; the search is centred there.
    workers : threads for the FFTs. block_points : points per batch (bounds memory).
    progress : called with the number of points done after each batch.

    Returns an :class:`OffsetField` of sec − ref offsets in pixels.
    """
    if ref.shape != sec.shape:
        raise ValueError(f"reference {ref.shape} and secondary {sec.shape} images differ in shape")
    if method not in KERNELS:
        raise ValueError(f"unknown tracking method {method!r}; expected one of {sorted(KERNELS)}")
    for name, value in (("chip_px", chip_px), ("step_px", step_px)):
        if value < 1:
            raise ValueError(f"{name} must be ≥ 1, got {value}")
    if search_px < 1:
        raise ValueError(f"search_px must be ≥ 1, got {search_px}")
    grid = point_grid(ref.shape, chip_px, step_px)
    params = dict(method=method, chip_px=chip_px, search_px=search_px, step_px=step_px)
    result = OffsetField.empty(grid, params)
    if not (np.isfinite(ref).any() and np.isfinite(sec).any()):  # all cloud / no overlap: nothing to match
        return result
    kernel = KERNELS[method]

    ref_valid = np.isfinite(ref)
    sec_valid = np.isfinite(sec)
    ref_f = np.where(ref_valid, ref, np.nanmean(ref) if ref_valid.any() else 0.0).astype(np.float32)
    sec_f = np.where(sec_valid, sec, np.nanmean(sec) if sec_valid.any() else 0.0).astype(np.float32)

    prior_x = np.zeros((grid.n_rows, grid.n_cols), int) if prior_dx is None else np.rint(np.nan_to_num(prior_dx)).astype(int)
    prior_y = np.zeros((grid.n_rows, grid.n_cols), int) if prior_dy is None else np.rint(np.nan_to_num(prior_dy)).astype(int)
    pad = search_px + int(max(np.abs(prior_x).max(initial=0), np.abs(prior_y).max(initial=0)))
    sec_pad = np.pad(sec_f, pad, mode="constant", constant_values=float(np.mean(sec_f)))
    sec_valid_pad = np.pad(sec_valid, pad, mode="constant", constant_values=False)

    m = chip_px + 2 * search_px
    chips_view = sliding_window_view(ref_f, (chip_px, chip_px))
    windows_view = sliding_window_view(sec_pad, (m, m))
    ref_valid_frac = _box_mean(ref_valid, chip_px)
    sec_valid_frac = _box_mean(sec_valid_pad, chip_px)

    rows, cols = np.meshgrid(grid.top_left_rows, grid.top_left_cols, indexing="ij")
    point_ok = ref_valid_frac[rows, cols] >= MIN_VALID_FRACTION
    idx = np.flatnonzero(point_ok)
    done = 0
    for start in range(0, idx.size, block_points):
        sel = idx[start : start + block_points]
        r, c = rows.flat[sel], cols.flat[sel]
        wr = r + prior_y.flat[sel] - search_px + pad
        wc = c + prior_x.flat[sel] - search_px + pad
        chips = chips_view[r, c]
        windows = windows_view[wr, wc]
        out = kernel(chips, windows, workers=workers)
        dy = out["dy"] + prior_y.flat[sel]
        dx = out["dx"] + prior_x.flat[sel]
        # Reject matches that land on missing pixels of the secondary image.
        my = np.clip(np.rint(r + dy).astype(int) + pad, 0, sec_valid_frac.shape[0] - 1)
        mx = np.clip(np.rint(c + dx).astype(int) + pad, 0, sec_valid_frac.shape[1] - 1)
        good = np.isfinite(dx) & np.isfinite(dy) & (sec_valid_frac[my, mx] >= MIN_VALID_FRACTION)
        sigma_y, sigma_x = _sigma(out["peak"], out["curv_y"], out["curv_x"], chip_px)
        for name, value in (("dx", dx), ("dy", dy), ("peak", out["peak"]), ("snr", out["snr"]),
                            ("sigma_x", sigma_x), ("sigma_y", sigma_y)):
            getattr(result, name).flat[sel] = np.where(good, value, np.nan)
        done += sel.size
        if progress is not None:
            progress(sel.size)
    return result


def _box_mean(mask: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``mask`` over every n×n box, indexed by the box's top-left pixel."""
    s = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1))
    s[1:, 1:] = mask.cumsum(0).cumsum(1)
    return (s[n:, n:] - s[:-n, n:] - s[n:, :-n] + s[:-n, :-n]) / (n * n)


def _sigma(peak: np.ndarray, curv_y: np.ndarray, curv_x: np.ndarray, chip_px: int) -> tuple[np.ndarray, np.ndarray]:
    """1-sigma offset error from the peak height and sharpness.

    The correlation surface's curvature κ (per px²) and the peak ρ give
    σ² = (1 − ρ) / (ρ · κ · n_eff), the usual estimate behind ampcor's covariance,
    with n_eff = chip_px² / 9 independent samples (texture correlated over ~3 px).
    """
    n_eff = chip_px * chip_px / 9.0
    with np.errstate(divide="ignore", invalid="ignore"):
        base = np.clip(1 - peak, 1e-6, None) / (np.clip(peak, 1e-6, None) * n_eff)
        return np.sqrt(base / np.clip(curv_y, 1e-6, None)), np.sqrt(base / np.clip(curv_x, 1e-6, None))
