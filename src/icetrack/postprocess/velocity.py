"""Step 6: from raw offsets to a velocity map one can trust.

Order matters: bad matches are rejected first (correlation/SNR thresholds, the
normalised median test, speed and direction bounds, small clumps), the residual offset
over stable ground is then measured on what survived and removed, small holes are
filled, and every point gets an error estimate. Offsets are in image pixels, velocities
in m/yr. docs/quality.md explains each step and its default threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.interpolate import griddata
from icetrack.common.units import DAYS_PER_YEAR


# Bit flags of the ``reject_reason`` layer (fixed values: they are written to files). A
# point carries the flag of the first test it failed: thresholds, median test, speed,
# direction, clumps.
REASONS = {"low_correlation": 1, "low_snr": 2, "median_test": 4, "speed_limit": 8, "small_clump": 16, "not_tracked": 32,
           "direction": 64}


@dataclass
class Velocity:
    """Velocity on the point grid; m/yr, x east, y north.

    ``vx_error``/``vy_error`` are 1-sigma errors: the stable-ground NMAD (map-wide noise
    floor) combined in quadrature with the part of the point's correlation-based error
    that exceeds the typical one on stable ground (see :func:`offsets_to_velocity`).
    """

    vx: np.ndarray
    vy: np.ndarray
    vx_error: np.ndarray
    vy_error: np.ndarray
    interpolated: np.ndarray  # True where a small hole was filled
    reject_reason: np.ndarray  # bit flags of :data:`REASONS`
    stats: dict = field(default_factory=dict)

    @property
    def v(self) -> np.ndarray:
        return np.hypot(self.vx, self.vy)

    @property
    def v_error(self) -> np.ndarray:
        """Speed error: the component errors projected on the flow direction."""
        v = self.v
        with np.errstate(invalid="ignore", divide="ignore"):
            ex = np.where(v > 0, self.vx / v, np.sqrt(0.5))
            ey = np.where(v > 0, self.vy / v, np.sqrt(0.5))
        return np.sqrt((ex * self.vx_error) ** 2 + (ey * self.vy_error) ** 2)


def normalised_median_residual(u: np.ndarray, eps: float = 0.1, radius: int = 1) -> np.ndarray:
    """Westerweel & Scarano (2005): |u − median(neighbours)| / (median(|neighbour residuals|) + eps).

    Neighbours are the (2r+1)²−1 points around each point, NaNs ignored. ``eps`` (px)
    is the expected noise floor that keeps smooth, noise-free areas from flagging.
    """
    h, w = u.shape
    pad = np.pad(u, radius, constant_values=np.nan)
    neigh = [pad[radius + dy : radius + dy + h, radius + dx : radius + dx + w]
             for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1) if dy or dx]
    stack = np.stack(neigh)
    with np.errstate(all="ignore"), _quiet_nan_warnings():
        med = np.nanmedian(stack, axis=0)
        resid = np.nanmedian(np.abs(stack - med), axis=0)
        return np.abs(u - med) / (resid + eps)


def remove_small_clumps(valid: np.ndarray, min_size: int) -> np.ndarray:
    """``valid`` without 8-connected groups of fewer than ``min_size`` points."""
    if min_size <= 1:
        return valid
    labels, n = ndimage.label(valid, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_size
    keep[0] = False
    return keep[labels]


def fill_small_holes(field_: np.ndarray, max_hole: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate NaN holes of at most ``max_hole`` points lying inside ``allowed``.

    A hole is an 4-connected NaN region that does not touch the map border; its ring of
    valid neighbours is the interpolation support, so nothing is extrapolated.
    Returns (filled field, mask of filled points).
    """
    out = field_.copy()
    filled = np.zeros(field_.shape, bool)
    if max_hole <= 0:
        return out, filled
    holes, n = ndimage.label(~np.isfinite(field_))
    if n == 0:
        return out, filled
    sizes = np.bincount(holes.ravel(), minlength=n + 1)
    border = np.unique(np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]]))
    slices = ndimage.find_objects(holes)
    for label in range(1, n + 1):
        if sizes[label] > max_hole or label in border:
            continue
        sl = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in slices[label - 1])
        hole = holes[sl] == label
        if not allowed[sl][hole].all():
            continue
        ring = ndimage.binary_dilation(hole, iterations=2) & ~hole & np.isfinite(field_[sl])
        if ring.sum() < 3:
            continue
        pts = np.argwhere(ring)
        targets = np.argwhere(hole)
        vals = griddata(pts, field_[sl][ring], targets, method="linear")
        if np.isnan(vals).any():
            vals = np.where(np.isnan(vals), griddata(pts, field_[sl][ring], targets, method="nearest"), vals)
        block = out[sl]
        block[hole] = vals
        filled[sl][hole] = True
    return out, filled


def nmad(x: np.ndarray) -> float:
    """Normalised median absolute deviation (≈ std for Gaussian data, robust to outliers)."""
    x = x[np.isfinite(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if x.size else float("nan")


def direction_deviation_deg(vx: np.ndarray, vy: np.ndarray, ref_vx: np.ndarray, ref_vy: np.ndarray) -> np.ndarray:
    """Angle (degrees, 0–180) between the measured and the reference flow vectors."""
    dot = vx * ref_vx + vy * ref_vy
    cross = vx * ref_vy - vy * ref_vx
    return np.degrees(np.abs(np.arctan2(cross, dot)))


def offsets_to_velocity(
    dx: np.ndarray, dy: np.ndarray, peak: np.ndarray, snr: np.ndarray, sigma_x: np.ndarray, sigma_y: np.ndarray,
    pixel_size_m: tuple[float, float], dt_days: float, glacier: np.ndarray, stable: np.ndarray, config: dict,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
) -> Velocity:
    """Mask, correct and convert offsets (px, x along columns, y along rows) to velocity.

    ``pixel_size_m`` is the image transform's (a, e): e < 0 on north-up grids, so a
    positive row offset is southward motion. ``glacier`` and ``stable`` are boolean
    masks on the point grid. ``config`` is the ``postprocess`` config block.
    ``reference`` is an optional (vx, vy) flow field in m/yr on the point grid (e.g. an
    ITS_LIVE mosaic) for the direction test of ``config["direction"]``; NaN = unknown.

    Steps, each recorded in ``reject_reason`` (first failing test only) and in
    ``stats["rejected_fraction"]``: correlation peak and SNR thresholds; the normalised
    median test (Westerweel & Scarano 2005) on both components; the speed bound; the
    direction bound against the reference; removal of isolated clumps. Then the median
    offset over stable ground is removed (its NMAD is the map's noise floor), holes of
    at most ``fill_max_hole_points`` inside the glacier are interpolated (flagged in
    ``interpolated``), and each point gets a 1-sigma error (see :data:`Velocity`).
    """
    dt_yr = dt_days / DAYS_PER_YEAR
    a_m, e_m = pixel_size_m
    tracked = np.isfinite(dx) & np.isfinite(dy)
    reason = np.where(tracked, 0, REASONS["not_tracked"]).astype(np.uint8)

    def reject(bad: np.ndarray, name: str) -> None:
        nonlocal reason
        new = bad & (reason == 0)
        reason = np.where(new, reason | REASONS[name], reason)

    with np.errstate(invalid="ignore"):
        reject(~(peak >= config["min_correlation"]), "low_correlation")
        reject(~(snr >= config["min_snr"]), "low_snr")
    ok = reason == 0
    mx, my = np.where(ok, dx, np.nan), np.where(ok, dy, np.nan)
    med_cfg = config["median_test"]
    nres = np.fmax(normalised_median_residual(mx, med_cfg["eps_px"], med_cfg["radius"]),
                   normalised_median_residual(my, med_cfg["eps_px"], med_cfg["radius"]))
    with np.errstate(invalid="ignore"):
        reject(nres > med_cfg["threshold"], "median_test")
        speed = np.hypot(dx * a_m, dy * e_m) / dt_yr
        reject(speed > config["max_speed_m_per_yr"], "speed_limit")
    dir_cfg = config.get("direction") or {}
    if reference is not None and dir_cfg.get("max_deviation_deg") is not None:
        ref_vx, ref_vy = reference
        slow = dir_cfg.get("min_speed_m_per_yr", 0.0)
        # Direction is only meaningful where both flows are clearly above the noise.
        with np.errstate(invalid="ignore"):
            testable = (np.hypot(ref_vx, ref_vy) >= slow) & (speed >= slow)
            deviation = direction_deviation_deg(dx * a_m, dy * e_m, ref_vx, ref_vy)
            reject(testable & (deviation > dir_cfg["max_deviation_deg"]), "direction")
    ok = reason == 0
    reject(ok & ~remove_small_clumps(ok, config["min_clump_points"]), "small_clump")
    ok = reason == 0

    # Stable ground: the residual offset there is co-registration error; remove it.
    on_rock = ok & stable
    n_rock = int(on_rock.sum())
    enough = n_rock >= config["min_stable_points"]
    bias_x = float(np.median(dx[on_rock])) if enough else 0.0
    bias_y = float(np.median(dy[on_rock])) if enough else 0.0
    cdx = np.where(ok, dx - bias_x, np.nan)
    cdy = np.where(ok, dy - bias_y, np.nan)
    scatter_x = nmad(cdx[on_rock]) if enough else float("nan")
    scatter_y = nmad(cdy[on_rock]) if enough else float("nan")

    vx = cdx * a_m / dt_yr
    vy = cdy * e_m / dt_yr
    max_hole = config["fill_max_hole_points"]
    vx, filled = fill_small_holes(vx, max_hole, glacier)
    vy, _ = fill_small_holes(vy, max_hole, glacier)
    # A filled point's tracking error is that of its neighbours, interpolated the same way.
    sx, _ = fill_small_holes(np.where(ok, sigma_x, np.nan), max_hole, glacier)
    sy, _ = fill_small_holes(np.where(ok, sigma_y, np.nan), max_hole, glacier)

    # Error (1 sigma, per component): the stable-ground NMAD is the measured noise of a
    # typical match, co-registration included; a point whose correlation-based error
    # exceeds that of typical stable-ground matches gets the excess added in quadrature,
    # so poor matches carry larger errors without counting the typical noise twice.
    # Without enough stable ground the correlation-based error is all there is.
    floor_x = np.nan_to_num(scatter_x) * abs(a_m) / dt_yr
    floor_y = np.nan_to_num(scatter_y) * abs(e_m) / dt_yr
    typical_x = float(np.nanmedian(sigma_x[on_rock])) if enough else 0.0
    typical_y = float(np.nanmedian(sigma_y[on_rock])) if enough else 0.0
    ex = np.sqrt(np.clip(np.nan_to_num(sx) ** 2 - typical_x**2, 0.0, None)) * abs(a_m) / dt_yr
    ey = np.sqrt(np.clip(np.nan_to_num(sy) ** 2 - typical_y**2, 0.0, None)) * abs(e_m) / dt_yr
    vx_error = np.where(np.isfinite(vx), np.hypot(floor_x, ex), np.nan)
    vy_error = np.where(np.isfinite(vy), np.hypot(floor_y, ey), np.nan)

    n = reason.size
    n_tracked = int(tracked.sum())
    counts = {name: int(((reason & bit) > 0).sum()) for name, bit in REASONS.items()}
    stats = {
        "points": n,
        "points_tracked": n_tracked,
        "valid_fraction": float(np.isfinite(vx).mean()),
        "valid_fraction_glacier": float(np.isfinite(vx)[glacier].mean()) if glacier.any() else float("nan"),
        "measured_fraction": float(ok.mean()),
        "interpolated_points": int(filled.sum()),
        "rejected_points": counts,
        "rejected_fraction": {name: c / n for name, c in counts.items()},
        "rejected_fraction_of_tracked": {name: (c / n_tracked if n_tracked else float("nan"))
                                         for name, c in counts.items() if name != "not_tracked"},
        "direction_test": reference is not None and dir_cfg.get("max_deviation_deg") is not None,
        "stable_ground": {
            "points": n_rock,
            "median_offset_px": [bias_x, bias_y],
            "nmad_px": [scatter_x, scatter_y],
            "median_offset_m_per_yr": [bias_x * a_m / dt_yr, bias_y * e_m / dt_yr],
            "nmad_m_per_yr": [floor_x if enough else float("nan"), floor_y if enough else float("nan")],
            "typical_correlation_error_px": [typical_x, typical_y],
            "corrected": enough,
        },
    }
    return Velocity(vx.astype(np.float32), vy.astype(np.float32), vx_error.astype(np.float32),
                    vy_error.astype(np.float32), filled, reason, stats)


class _quiet_nan_warnings:
    """Silence numpy's 'All-NaN slice' warnings: all-NaN neighbourhoods are expected."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)
