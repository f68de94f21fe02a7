"""The ``fft_ncc`` kernel: FFT normalised cross-correlation, then Lucas–Kanade sub-pixel.

1. The full NCC surface over the search window (:func:`icetrack.track.ncc.ncc_surfaces`:
   batched float32 FFTs, summed-area-table normalisation) gives the integer peak, the
   peak correlation and ampcor's SNR — robust to large offsets and to gain/offset changes.
2. A 2-D quadratic fit on the peak's 3×3 neighbourhood gives a first sub-pixel estimate
   and the surface's curvature (for the error estimate).
3. Inverse-compositional Lucas–Kanade on the image intensities
   (:func:`icetrack.track.subpixel.lucas_kanade_refine`) converges from there to the
   least-squares translation: no pixel locking, unlike any fit on integer lags.
"""

from __future__ import annotations

import numpy as np

from .ncc import as_banded, ncc_surfaces
from .subpixel import lucas_kanade_refine, quadratic_peak_2d


def track_batch(chips: np.ndarray, windows: np.ndarray, workers: int = 1) -> dict[str, np.ndarray]:
    """Offsets of each chip (B[, K], N, N) inside its window (B[, K], M, M), relative to
    the window's centre lag (px). Returns dict of dy, dx, peak, snr, curv_y, curv_x."""
    surfaces, iy, ix, peak, snr = ncc_surfaces(chips, windows, workers)
    fit_y, fit_x, curv_y, curv_x = quadratic_peak_2d(surfaces, iy, ix)
    sy, sx = lucas_kanade_refine(as_banded(chips), as_banded(windows), fit_y, fit_x)
    centre = (surfaces.shape[1] - 1) / 2
    return {"dy": sy - centre, "dx": sx - centre, "peak": peak, "snr": snr, "curv_y": curv_y, "curv_x": curv_x}
