"""The output contract shared by all kernels and the point grid they track on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from affine import Affine


@dataclass(frozen=True)
class PointGrid:
    """Chip positions: chip (i, j) covers image rows ``i*step .. i*step+chip`` and
    columns ``j*step .. j*step+chip``; its centre is at ``(i*step + chip/2)`` in
    pixel-is-area coordinates (pixel k spans [k, k+1))."""

    chip_px: int
    step_px: int
    n_rows: int
    n_cols: int

    @property
    def top_left_rows(self) -> np.ndarray:
        return np.arange(self.n_rows) * self.step_px

    @property
    def top_left_cols(self) -> np.ndarray:
        return np.arange(self.n_cols) * self.step_px

    def transform(self, image_transform: Affine) -> Affine:
        """Transform of the output raster whose pixel (i, j) is centred on chip (i, j)'s centre.

        Each output pixel is ``step`` image pixels wide, so its west edge lies
        ``chip/2 - step/2`` image pixels east of the image's west edge.
        """
        edge = self.chip_px / 2 - self.step_px / 2
        return image_transform @ Affine.translation(edge, edge) @ Affine.scale(self.step_px)


def point_grid(shape: tuple[int, int], chip_px: int, step_px: int) -> PointGrid:
    """All chip positions that fit entirely inside an image of ``shape``."""
    if chip_px > min(shape):
        raise ValueError(f"chip size {chip_px} px is larger than the image {shape}")
    n_rows = (shape[0] - chip_px) // step_px + 1
    n_cols = (shape[1] - chip_px) // step_px + 1
    return PointGrid(chip_px, step_px, n_rows, n_cols)


@dataclass
class OffsetField:
    """Per-point tracking results. Offsets are sec − ref positions in image pixels:
    ``dx`` along columns (east for north-up grids), ``dy`` along rows (south)."""

    dx: np.ndarray
    dy: np.ndarray
    peak: np.ndarray  # normalised cross-correlation at the peak, −1..1
    snr: np.ndarray  # ampcor-style: peak² / mean(surface²) away from the peak
    sigma_x: np.ndarray  # 1-sigma error estimate of dx, px
    sigma_y: np.ndarray  # 1-sigma error estimate of dy, px
    grid: PointGrid
    params: dict = field(default_factory=dict)

    @classmethod
    def empty(cls, grid: PointGrid, params: dict | None = None) -> "OffsetField":
        nan = lambda: np.full((grid.n_rows, grid.n_cols), np.nan, dtype=np.float32)  # noqa: E731
        return cls(nan(), nan(), nan(), nan(), nan(), nan(), grid, dict(params or {}))
