"""A reference velocity map as the prior offset field that centres each search."""

from __future__ import annotations

import numpy as np
from affine import Affine

from .result import PointGrid
from icetrack.common.units import DAYS_PER_YEAR



def prior_from_velocity(vx_path: str, vy_path: str, grid: PointGrid, image_transform: Affine, crs: str,
                        dt_days: float) -> tuple[np.ndarray, np.ndarray]:
    """Expected offsets (px, sec − ref; dx along columns, dy along rows) at every point
    of ``grid`` from a reference velocity map — two GeoTIFFs of vx (east) and vy (north)
    in m/yr, any CRS and resolution (e.g. an ITS_LIVE mosaic) — over ``dt_days``.

    The map is averaged onto the point grid; the image transform's pixel size converts
    metres to pixels (rows run south on a north-up grid, so dy = −vy·dt / |pixel height|).
    NaN where the map has no value (``track_pair`` then searches around 0 there).
    """
    from icetrack.postprocess.pair import reference_on_grid

    vx, vy = reference_on_grid(vx_path, vy_path, grid.transform(image_transform), crs,
                               (grid.n_rows, grid.n_cols), "tracking.prior")
    years = dt_days / DAYS_PER_YEAR
    # Metres east/north → image columns/rows: invert the transform's linear part.
    inverse = ~Affine(image_transform.a, image_transform.b, 0.0, image_transform.d, image_transform.e, 0.0)
    dx, dy = inverse @ (vx * years, vy * years)
    return np.asarray(dx, dtype=np.float64), np.asarray(dy, dtype=np.float64)
