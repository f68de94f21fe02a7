"""``track_pair``: the one function the workflow and notebooks call to track two images."""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import ampcor, fft_ncc
from .result import OffsetField, point_grid
from .threads import threaded

# A kernel maps (chips (B,N,N), windows (B,M,M), workers, **options) to per-chip dy, dx,
# peak, snr, curv_y, curv_x, offsets relative to the window's centre lag. New kernels
# register here and get strips, priors, NaN handling and georeferencing from
# ``track_pair`` for free.
# ``workers`` threads each run the kernel on a slice of the batch (see threads.py).
KERNELS: dict[str, Callable[..., dict[str, np.ndarray]]] = {"fft_ncc": threaded(fft_ncc.track_batch),
                                                            "ampcor": threaded(ampcor.track_batch)}

MIN_VALID_FRACTION = 0.9  # chips with more missing (cloud/NaN) pixels are not tracked
BLOCK_POINTS = 1024  # chips per kernel call (split between threads): amortises per-call overhead, ~15 MB of buffers
STRIP_ROWS = 8  # grid rows per tile
TILE_COLS = 128  # grid columns per tile: memory beyond the images is O(tile), whatever the scene size
PRIOR_SEARCH_PX = 3  # ± search around a coarse pass's offsets (its errors are ≲ 1 px)
COARSE_MARGIN_PX = 3  # LK's taps and ampcor's level 2 need ~2 px inside the search window beyond the peak


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
    block_points: int = BLOCK_POINTS,
    progress: Callable[[int], None] | None = None,
    kernel_options: dict | None = None,
    coarse_prior: bool = False,
    prior_search_px: int = PRIOR_SEARCH_PX,
) -> OffsetField:
    """Track ``sec`` against ``ref`` on a regular grid of chips.

    Parameters
    ----------
    ref, sec : float arrays on the same grid, 2-D (rows, cols) or 3-D (bands, rows, cols),
        e.g. the two components of an orientation image, which then correlate as one
        vector-valued image; NaN marks missing pixels (cloud, no data). float32 input is
        used as is (no full-size copy is made).
    chip_px : reference chip size (px). step_px : spacing of chip positions (px).
    search_px : the search window reaches ±search_px around the prior offset.
    method : a key of :data:`KERNELS`; ``kernel_options`` are passed on to it
        (e.g. ``{"oversampling_factor": 16}`` for ampcor).
    prior_dx, prior_dy : optional prior offsets per point (px, sec − ref), shape of the
        point grid — e.g. a reference velocity map converted to pixels; the search is
        centred on them (rounded) and reaches ±search_px around them. NaN = no prior (0).
    coarse_prior : first track 2×-downsampled images with the same kernel and chip size
        (covering twice the ground), then search only ±``prior_search_px`` around its
        offsets; points the coarse pass could not measure get the full ±search_px.
    workers : threads sharing each batch of chips (the rule's ``threads:``). block_points : chips
        per kernel call.
    progress : called with the number of points done after each batch.

    Memory: the images are read in tiles of STRIP_ROWS × TILE_COLS grid points, so beyond
    ``ref`` and ``sec`` themselves the working set is a few small tiles, whatever the
    scene size.

    Returns an :class:`OffsetField` of sec − ref offsets in pixels.
    """
    if ref.shape != sec.shape:
        raise ValueError(f"reference {ref.shape} and secondary {sec.shape} images differ in shape")
    if ref.ndim not in (2, 3):
        raise ValueError(f"images must be 2-D (rows, cols) or 3-D (bands, rows, cols), got shape {ref.shape}")
    ref, sec = (a[None] if a.ndim == 2 else a for a in (ref, sec))  # (bands, rows, cols) views
    if method not in KERNELS:
        raise ValueError(f"unknown tracking method {method!r}; expected one of {sorted(KERNELS)}")
    for name, value in (("chip_px", chip_px), ("step_px", step_px), ("search_px", search_px)):
        if value < 1:
            raise ValueError(f"{name} must be ≥ 1, got {value}")
    grid = point_grid(ref.shape[-2:], chip_px, step_px)
    params = dict(method=method, chip_px=chip_px, search_px=search_px, step_px=step_px)
    result = OffsetField.empty(grid, params)
    kernel = _bind(KERNELS[method], kernel_options or {}, workers)
    shape = (grid.n_rows, grid.n_cols)
    prior_x = _as_prior(prior_dx, shape, "prior_dx")
    prior_y = _as_prior(prior_dy, shape, "prior_dy")
    search = np.full(shape, search_px, dtype=np.int64)
    if coarse_prior:
        cx, cy = _coarse_pass(ref, sec, chip_px, search_px, step_px, method, kernel_options, workers, block_points,
                              prior_x, prior_y, grid)
        known = np.isfinite(cx) & np.isfinite(cy)
        prior_x = np.where(known, np.rint(cx), prior_x).astype(np.int64)
        prior_y = np.where(known, np.rint(cy), prior_y).astype(np.int64)
        search = np.where(known, min(prior_search_px, search_px), search_px)
    for s in np.unique(search):
        _track_points(ref, sec, grid, int(s), prior_y, prior_x, search == s, kernel, block_points, result, progress)
    return result


def _bind(kernel: Callable, options: dict, workers: int) -> Callable:
    return lambda chips, windows: kernel(chips, windows, workers=workers, **options)


def _as_prior(prior: np.ndarray | None, shape: tuple[int, int], name: str) -> np.ndarray:
    """Integer prior offsets (px) on the point grid; 0 where absent or NaN."""
    if prior is None:
        return np.zeros(shape, np.int64)
    prior = np.asarray(prior, dtype=np.float64)
    if prior.shape != shape:
        raise ValueError(f"{name} has shape {prior.shape}; expected the point grid's {shape}")
    return np.rint(np.nan_to_num(prior, nan=0.0, posinf=0.0, neginf=0.0)).astype(np.int64)


def _track_points(ref, sec, grid, search_px, prior_y, prior_x, selected, kernel, block_points, result, progress):
    """Track the ``selected`` points, tile by tile (STRIP_ROWS × TILE_COLS grid points), into ``result``."""
    for i0 in range(0, grid.n_rows, STRIP_ROWS):
        for j0 in range(0, grid.n_cols, TILE_COLS):
            tile = np.s_[i0:min(i0 + STRIP_ROWS, grid.n_rows), j0:min(j0 + TILE_COLS, grid.n_cols)]
            if selected[tile].any():
                _track_tile(ref, sec, grid, search_px, prior_y[tile], prior_x[tile], selected[tile], i0, j0,
                            kernel, block_points, result, progress)


def _track_tile(ref, sec, grid, search_px, py, px, tile_sel, i0, j0, kernel, block_points, result, progress):
    """One tile of grid points whose top-left point is (i0, j0): its reference chips and
    secondary search windows are cut from two small float32 arrays, never the whole image."""
    n, m = grid.chip_px, grid.chip_px + 2 * search_px
    rows, cols = tile_sel.shape
    # Reference tile: the chips of these points.
    r0, r1 = i0 * grid.step_px, (i0 + rows - 1) * grid.step_px + n
    c0, c1 = j0 * grid.step_px, (j0 + cols - 1) * grid.step_px + n
    ref_tile, ref_valid = _filled(ref[:, r0:r1, c0:c1])
    ref_count = _summed_area(ref_valid)
    del ref_valid
    # Secondary tile: every search window of these points, NaN where it leaves the image.
    lo_y = r0 + int(py[tile_sel].min()) - search_px
    hi_y = r1 + int(py[tile_sel].max()) + search_px
    lo_x = c0 + int(px[tile_sel].min()) - search_px
    hi_x = c1 + int(px[tile_sel].max()) + search_px
    sec_tile, sec_valid = _filled(_window(sec, lo_y, hi_y, lo_x, hi_x))
    sec_count = _summed_area(sec_valid)
    del sec_valid
    chips_view = sliding_window_view(ref_tile, (n, n), axis=(1, 2))  # (bands, rows, cols, n, n)
    windows_view = sliding_window_view(sec_tile, (m, m), axis=(1, 2))

    gi, gj = np.nonzero(tile_sel)
    r = gi * grid.step_px  # chip top-left, relative to the reference tile
    c = gj * grid.step_px
    keep = _box_fraction(ref_count, r, c, n) >= MIN_VALID_FRACTION
    gi, gj, r, c = gi[keep], gj[keep], r[keep], c[keep]
    for start in range(0, gi.size, block_points):
        b = slice(start, start + block_points)
        bi, bj, br, bc = gi[b], gj[b], r[b], c[b]
        oy, ox = py[bi, bj], px[bi, bj]
        # Window top-left in secondary-tile coordinates: chip + prior − search.
        wr = br + r0 + oy - search_px - lo_y
        wc = bc + c0 + ox - search_px - lo_x
        # (chips, bands, n, n): bands correlate as one vector-valued image (ncc.py).
        out = kernel(np.moveaxis(chips_view[:, br, bc], 0, 1), np.moveaxis(windows_view[:, wr, wc], 0, 1))
        dy = out["dy"] + oy
        dx = out["dx"] + ox
        # Reject matches that land on missing pixels of the secondary image.
        with np.errstate(invalid="ignore"):
            my = np.clip(np.rint(br + r0 + np.nan_to_num(dy) - lo_y).astype(np.int64), 0, sec_count.shape[0] - 1 - n)
            mx = np.clip(np.rint(bc + c0 + np.nan_to_num(dx) - lo_x).astype(np.int64), 0, sec_count.shape[1] - 1 - n)
        good = np.isfinite(dx) & np.isfinite(dy) & (_box_fraction(sec_count, my, mx, n) >= MIN_VALID_FRACTION)
        sigma_y, sigma_x = _sigma(out["peak"], out["curv_y"], out["curv_x"], n)
        gy, gx = bi + i0, bj + j0
        for name, value in (("dx", dx), ("dy", dy), ("peak", out["peak"]), ("snr", out["snr"]),
                            ("sigma_x", sigma_x), ("sigma_y", sigma_y)):
            getattr(result, name)[gy, gx] = np.where(good, value, np.nan)
        if progress is not None:
            progress(len(bi))
    if progress is not None:
        progress(int(tile_sel.sum()) - int(keep.sum()))  # untrackable points count as done


def _window(image: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """image[:, r0:r1, c0:c1] of a (bands, rows, cols) stack as float32, NaN where the window leaves the image."""
    out = np.full((image.shape[0], r1 - r0, c1 - c0), np.nan, dtype=np.float32)
    h, w = image.shape[-2:]
    sr0, sr1, sc0, sc1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
    if sr0 < sr1 and sc0 < sc1:
        out[:, sr0 - r0:sr1 - r0, sc0 - c0:sc1 - c0] = image[:, sr0:sr1, sc0:sc1]
    return out


def _filled(tile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tile (bands, rows, cols) as float32 with missing pixels replaced by each band's
    mean, validity mask (rows, cols): a pixel is valid where every band is finite)."""
    valid = np.isfinite(tile).all(axis=0)
    out = np.empty(tile.shape, dtype=np.float32)
    for k, band in enumerate(tile):
        fill = float(band[valid].mean()) if valid.any() else 0.0
        out[k] = np.where(valid, band, np.float32(fill))
    return out, valid


def _summed_area(mask: np.ndarray) -> np.ndarray:
    """Summed-area table (int32, one row and column of zeros first) of a boolean mask."""
    s = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int32)
    np.cumsum(mask, axis=0, dtype=np.int32, out=s[1:, 1:])
    np.cumsum(s[1:, 1:], axis=1, dtype=np.int32, out=s[1:, 1:])
    return s


def _box_fraction(table: np.ndarray, r: np.ndarray, c: np.ndarray, n: int) -> np.ndarray:
    """Fraction of True pixels in the n×n boxes with top-left (r, c), from a summed-area table."""
    return (table[r + n, c + n] - table[r, c + n] - table[r + n, c] + table[r, c]) / (n * n)


def _box_mean(mask: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``mask`` over every n×n box, indexed by the box's top-left pixel."""
    s = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int32)
    s[1:, 1:] = mask.cumsum(0, dtype=np.int32).cumsum(1, dtype=np.int32)
    return (s[n:, n:] - s[:-n, n:] - s[n:, :-n] + s[:-n, :-n]) / np.float32(n * n)


def _coarse_pass(ref, sec, chip_px, search_px, step_px, method, kernel_options, workers, block_points,
                 prior_x, prior_y, grid):
    """Offsets (px, full resolution) at every fine point from a pass on 2×-downsampled images.

    The coarse pass uses the same kernel and chip size (so each chip covers twice the
    ground), half the search (+ COARSE_MARGIN_PX), and a grid twice as coarse; its offsets are median-filtered
    (3×3, so one wrong match does not steer its neighbours) and taken at each fine
    point's nearest coarse point.
    """
    ref2, sec2 = _halve(ref), _halve(sec)
    coarse_grid = point_grid(ref2.shape[-2:], chip_px, step_px)
    # A fine point's chip centre at (i·step + chip/2) is the coarse point nearest (i·step + chip/2)/2.
    ci = np.clip(np.rint(((np.arange(grid.n_rows) * step_px + chip_px / 2) / 2 - chip_px / 2) / step_px).astype(int),
                 0, coarse_grid.n_rows - 1)
    cj = np.clip(np.rint(((np.arange(grid.n_cols) * step_px + chip_px / 2) / 2 - chip_px / 2) / step_px).astype(int),
                 0, coarse_grid.n_cols - 1)
    coarse_prior_x = np.zeros((coarse_grid.n_rows, coarse_grid.n_cols))
    coarse_prior_y = np.zeros_like(coarse_prior_x)
    coarse_prior_x[np.ix_(ci, cj)] = prior_x / 2
    coarse_prior_y[np.ix_(ci, cj)] = prior_y / 2
    # Half the search plus the margin the kernels' sub-pixel steps need inside the window.
    coarse = track_pair(ref2, sec2, chip_px, search_px // 2 + COARSE_MARGIN_PX, step_px, method, coarse_prior_x, coarse_prior_y,
                        workers, block_points, kernel_options=kernel_options)
    cx, cy = _nanmedian3x3(coarse.dx), _nanmedian3x3(coarse.dy)
    return 2 * cx[np.ix_(ci, cj)], 2 * cy[np.ix_(ci, cj)]


def _nanmedian3x3(a: np.ndarray) -> np.ndarray:
    """3×3 median ignoring NaN (NaN where all nine are), edges repeated."""
    padded = np.pad(a.astype(np.float64), 1, mode="edge")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbourhoods stay NaN
        return np.nanmedian(sliding_window_view(padded, (3, 3)), axis=(-2, -1))


def _halve(image: np.ndarray) -> np.ndarray:
    """2×2 block mean of a (bands, rows, cols) stack as float32 (NaN if any of the four is
    NaN), built in strips of rows."""
    h, w = image.shape[1] // 2, image.shape[2] // 2
    out = np.empty((image.shape[0], h, w), dtype=np.float32)
    rows = 512
    for k in range(image.shape[0]):
        for r in range(0, h, rows):
            block = image[k, 2 * r:2 * min(r + rows, h), :2 * w].astype(np.float32)
            out[k, r:r + rows] = block.reshape(-1, 2, w, 2).mean(axis=(1, 3))
    return out


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
