"""GLAFT quality metrics of a velocity map (Zheng et al. 2023), without files or plots.

GLAFT (GLAcier Feature Tracking testkit, https://github.com/whyjz/GLAFT, PyPI ``glaft``
1.0.0) scores a map by two KDE-peak widths:

* static terrain (``glaft.Velocity.static_terrain_analysis``): over stable ground the
  true velocity is 0, so the width of the peak of the joint density of (vx, vy) is the
  noise: δu, δv. Points outside the peak's box are the share of incorrect matches
  (``cal_outlier_percent``).
* along-flow strain rate (``longitudinal_shear_analysis``): over ice, the strain rates
  rotated into the local flow direction, (ε_x'x', ε_x'y'), vary slowly in reality, so
  the width of their density peak is dominated by noise: δx'x', δx'y'.

Both use the same peak-width recipe, ported here line by line from ``glaft/metrics.py``
(class ``Velocity``): ``calculate_xystd``, ``calculate_bandwidth``, ``calculate_kde``,
``construct_crude_mesh``/``eval_crude_mesh``, ``construct_fine_mesh``/``eval_fine_mesh``,
``thresholding_fine_mesh``, ``thresholding_metric``; strain rates from
``_calculate_strain_rate``, ``_rotate_strain_rate`` and ``calculate_flow_theta``. The
Epanechnikov KDE is evaluated exactly over the pairs closer than the bandwidth
(sklearn's ``KernelDensity`` with its default zero tolerances is exact too);
normalisation constants cancel in the peak-relative threshold.
``tests/test_quality.py`` runs the ``glaft`` package on the same inputs and checks that
every metric agrees within 1 %.

Two GLAFT conventions are kept on purpose so the numbers compare with published ones:
the strain rates use scipy's un-normalised Sobel kernels (8 × the centred-difference
gradient, so δx'x' and δx'y' are 8 × a strain-rate scatter), and the flow direction is
``scipy.signal.medfilt2d`` of atan2(vy, vx) over a ~1.5 km window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import sobel
from scipy.signal import medfilt2d
from scipy.spatial import cKDTree
from icetrack.common.units import DAYS_PER_YEAR



@dataclass(frozen=True)
class PeakWidth:
    """Half-widths of the KDE peak box along each axis, its location, and the share of
    samples outside the box (GLAFT's ``metric_*``, ``kdepeak_*``, ``outlier_percent``)."""

    half_width_x: float
    half_width_y: float
    peak_x: float
    peak_y: float
    outlier_fraction: float
    samples: int


def _mesh(midx: float, midy: float, halfwidth: float, gridsize: int) -> np.ndarray:
    """GLAFT ``_construct_kde_eval_mesh``: (gridsize², 2) evaluation points."""
    xeval = np.linspace(midx - halfwidth, midx + halfwidth, gridsize)
    yeval = np.linspace(midy - halfwidth, midy + halfwidth, gridsize)
    xg, yg = np.meshgrid(xeval, yeval)
    return np.vstack([xg.ravel(), yg.ravel()]).T


def _epanechnikov_density(samples: np.ndarray, points: np.ndarray, bandwidth: float) -> np.ndarray:
    """Unnormalised 2-D Epanechnikov KDE Σ max(0, 1 − d²/h²) of ``samples`` (2, n) at ``points`` (m, 2).

    Exact: the kernel is zero beyond h, so only the sample–point pairs closer than h
    (found with k-d trees) contribute — 10–20× faster than all pairs on large maps.
    """
    pairs = cKDTree(points).sparse_distance_matrix(cKDTree(samples.T), bandwidth, output_type="ndarray")
    weights = np.clip(1.0 - (pairs["v"] / bandwidth) ** 2, 0.0, None)
    return np.bincount(pairs["i"], weights=weights, minlength=points.shape[0])


def kde_peak_width(x: np.ndarray, y: np.ndarray, thres_sigma: float = 2.0, gridsize: int = 60) -> PeakWidth:
    """GLAFT's peak-width recipe on samples (x, y) (any units; NaNs dropped).

    The bandwidth is the rule-of-thumb h = 2.1991 σ n^(−1/6) with σ = (var x · var y)^¼;
    the density is evaluated on a ``gridsize``² mesh of half-width (thres_sigma + 1) σ
    around the medians, then on a finer mesh spanning the region above the threshold
    max(z) / exp(thres_sigma² / 2) (the ±thres_sigma level of a normal peak); the
    half-widths of that region's bounding box are the metric.
    """
    ok = np.isfinite(x) & np.isfinite(y)
    xy = np.vstack([np.asarray(x, np.float64)[ok], np.asarray(y, np.float64)[ok]])
    n = xy.shape[1]
    nan = PeakWidth(np.nan, np.nan, np.nan, np.nan, np.nan, n)
    if n < 3:
        return nan
    cov = np.cov(xy)
    xystd = (cov[0, 0] * cov[1, 1]) ** 0.25
    if not np.isfinite(xystd) or xystd <= 0:
        return nan
    bandwidth = 2.1991 * xystd * n ** (-1.0 / 6.0)
    midx, midy = np.median(xy[0]), np.median(xy[1])
    thres_multiplier = np.e ** (thres_sigma**2 / 2)

    crude = _mesh(midx, midy, (thres_sigma + 1) * xystd, gridsize)
    zc = _epanechnikov_density(xy, crude, bandwidth)
    above = zc >= zc.max() / thres_multiplier
    halfwidth = ((crude[above, 0].max() - crude[above, 0].min()) + (crude[above, 1].max() - crude[above, 1].min())) / 2

    fine = _mesh(midx, midy, halfwidth, gridsize)
    zf = _epanechnikov_density(xy, fine, bandwidth)
    above = zf >= zf.max() / thres_multiplier
    bx, by = fine[above, 0], fine[above, 1]
    peak = int(np.argmax(zf))
    outside = (xy[0] < bx.min()) | (xy[0] > bx.max()) | (xy[1] < by.min()) | (xy[1] > by.max())
    return PeakWidth(float((bx.max() - bx.min()) / 2), float((by.max() - by.min()) / 2),
                     float(fine[peak, 0]), float(fine[peak, 1]), float(outside.mean()), n)


def flow_direction(vx: np.ndarray, vy: np.ndarray, pixel_m: float, on_ice: np.ndarray) -> np.ndarray:
    """GLAFT ``calculate_flow_theta``: atan2(vy, vx) (rad, anticlockwise from east),
    median-filtered over ~1.5 km (odd kernel, at most 35 points), NaN off the ice."""
    kernel = int((1500 / pixel_m) // 2 * 2 + 1)
    kernel = min(kernel, 35)
    theta = medfilt2d(np.arctan2(vy, vx), kernel)
    theta[~on_ice | ~np.isfinite(vx)] = np.nan
    return theta


def along_flow_strain_rates(vx: np.ndarray, vy: np.ndarray, pixel_m: tuple[float, float],
                            on_ice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GLAFT strain rates rotated into the flow: (ε_x'x', ε_x'y') in (velocity unit)/m,
    with un-normalised Sobel derivatives (8 × centred differences) as GLAFT.

    ``vx``, ``vy``: north-up rasters (row 0 = north), x east, y north. ``pixel_m`` is
    (x spacing, |y spacing|) in m. Values off ``on_ice`` are NaN before differentiating,
    so the strain rate at the ice margin (stencil reaching off the ice) is NaN.
    """
    ice_vx = np.where(on_ice, vx, np.nan)
    ice_vy = np.where(on_ice, vy, np.nan)
    theta = flow_direction(vx, vy, pixel_m[0], on_ice)
    # GLAFT flips to the Cartesian convention (row 0 = south) before differentiating.
    xx, yy = np.flipud(ice_vx), np.flipud(ice_vy)
    duxdx = sobel(xx, axis=1, mode="constant", cval=np.nan)
    duxdy = sobel(xx, axis=0, mode="constant", cval=np.nan)
    duydx = sobel(yy, axis=1, mode="constant", cval=np.nan)
    duydy = sobel(yy, axis=0, mode="constant", cval=np.nan)
    exx = np.flipud(duxdx / pixel_m[0])
    eyy = np.flipud(duydy / pixel_m[1])
    exy = np.flipud(0.5 * (duxdy / pixel_m[1] + duydx / pixel_m[0]))
    exx_rot = exx * np.cos(theta) ** 2 + eyy * np.sin(theta) ** 2 + exy * np.sin(2 * theta)
    exy_rot = 0.5 * (eyy - exx) * np.sin(2 * theta) + exy * np.cos(2 * theta)
    return exx_rot, exy_rot


def glaft_metrics(vx: np.ndarray, vy: np.ndarray, stable: np.ndarray, on_ice: np.ndarray,
                  pixel_m: tuple[float, float], dt_days: float, thres_sigma: float = 2.0,
                  kde_gridsize: int = 60) -> dict:
    """All quality figures of one velocity map (m/yr, north-up, NaN = no value).

    Returns a JSON-ready dict: static-terrain δu, δv (m/yr, m/day and px over the pair),
    the KDE peak location, the share of incorrect matches over stable ground, the
    along-flow strain-rate scatter δx'x', δx'y' (1/yr, GLAFT's Sobel scaling), and the
    coverage (share of finite points, everywhere and over the ice).
    """
    px_x, px_y = abs(pixel_m[0]), abs(pixel_m[1])
    finite = np.isfinite(vx) & np.isfinite(vy)
    static = kde_peak_width(vx[stable & finite], vy[stable & finite], thres_sigma, kde_gridsize)
    exx, exy = along_flow_strain_rates(vx.astype(np.float64), vy.astype(np.float64), (px_x, px_y), on_ice)
    strain = kde_peak_width(exx, exy, thres_sigma, kde_gridsize)
    dt_yr = dt_days / DAYS_PER_YEAR
    return {
        "reference": "Zheng et al. (2023), GLAFT 1.0.0 (glaft.Velocity), thres_sigma "
                     f"{thres_sigma}, kde_gridsize {kde_gridsize}",
        "static_terrain": {
            "points": static.samples,
            "delta_u_m_per_yr": static.half_width_x,
            "delta_v_m_per_yr": static.half_width_y,
            "delta_u_m_per_day": static.half_width_x / DAYS_PER_YEAR,
            "delta_v_m_per_day": static.half_width_y / DAYS_PER_YEAR,
            "delta_u_px": static.half_width_x * dt_yr / px_x,
            "delta_v_px": static.half_width_y * dt_yr / px_y,
            "kde_peak_m_per_yr": [static.peak_x, static.peak_y],
            "incorrect_match_fraction": static.outlier_fraction,
        },
        "along_flow_strain_rate": {
            "points": strain.samples,
            "delta_xx_per_yr": strain.half_width_x,
            "delta_xy_per_yr": strain.half_width_y,
            "incorrect_match_fraction": strain.outlier_fraction,
            "note": "GLAFT scaling: Sobel derivatives, 8x the centred-difference strain rate",
        },
        "coverage": float(finite.mean()) if finite.size else float("nan"),
        "coverage_ice": float(finite[on_ice].mean()) if on_ice.any() else float("nan"),
    }


def quality_html(quality: dict) -> str:
    """A small self-contained HTML table of a pair's quality figures, for the Snakemake
    report (``quality`` is the dict written to quality.json)."""
    from html import escape

    g = quality.get("glaft", {})
    st, sr = g.get("static_terrain", {}), g.get("along_flow_strain_rate", {})
    sg = quality.get("stable_ground", {})

    def num(v, fmt="{:.3g}"):
        if isinstance(v, (list, tuple)):
            return ", ".join(num(x, fmt) for x in v)
        return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)

    def pct(v, fmt="{:.1f}"):
        text = num(100 * v if v is not None else None, fmt)
        return text if text == "n/a" else text + " %"

    rows = [
        ("Coverage (valid points, all / glacier)",
         f"{pct(quality.get('valid_fraction'))} / {pct(quality.get('valid_fraction_glacier'))}"),
        ("Interpolated points (small holes)", num(quality.get("interpolated_points"), "{:d}")),
        ("Stable ground: points", num(sg.get("points"), "{:d}")),
        ("Stable ground: median offset removed (x, y)", f"{num(sg.get('median_offset_px'))} px"),
        ("Stable ground: NMAD (x, y)", f"{num(sg.get('nmad_px'))} px = {num(sg.get('nmad_m_per_yr'))} m/yr"),
        ("GLAFT static terrain δu, δv",
         f"{num(st.get('delta_u_m_per_yr'))}, {num(st.get('delta_v_m_per_yr'))} m/yr "
         f"({num(st.get('delta_u_px'))}, {num(st.get('delta_v_px'))} px)"),
        ("GLAFT share of incorrect matches (stable ground)", pct(st.get("incorrect_match_fraction"))),
        ("GLAFT along-flow strain-rate scatter δx'x', δx'y'",
         f"{num(sr.get('delta_xx_per_yr'))}, {num(sr.get('delta_xy_per_yr'))} 1/yr"),
    ]
    rows += [(f"Rejected: {name.replace('_', ' ')}", pct(share, "{:.2f}"))
             for name, share in quality.get("rejected_fraction", {}).items()]
    body = "\n".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    title = escape(f"Quality of pair {quality.get('pair', '')} ({num(quality.get('dt_days'), '{:g}')} days)")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title + "</title>\n<style>"
            "body{font-family:sans-serif}th{text-align:left;padding-right:1em}td{font-family:monospace}"
            "</style></head>\n<body><h3>" + title + "</h3>\n<table>\n" + body + "\n</table>\n"
            "<p>δ: half-width of the kernel-density peak (Zheng et al. 2023, GLAFT); see docs/quality.md.</p>"
            "</body></html>\n")
