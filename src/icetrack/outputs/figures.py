"""Figures: speed over the reference image with flow arrows, a quality panel per pair, and
point time series. Colour maps are perceptually uniform (viridis) or categorical; every
axis carries its unit."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from affine import Affine  # noqa: E402

from icetrack.common.atomic import atomic_path  # noqa: E402


def _extent(transform: Affine, shape: tuple[int, int]) -> list[float]:
    """(left, right, bottom, top) in km for imshow."""
    left, top = transform.c, transform.f
    right, bottom = left + transform.a * shape[1], top + transform.e * shape[0]
    return [left / 1e3, right / 1e3, bottom / 1e3, top / 1e3]


def speed_map(path: str | Path, background: np.ndarray, bg_transform: Affine, vx: np.ndarray, vy: np.ndarray,
              v_transform: Affine, crs: str, title: str, arrows: int = 25) -> None:
    """Speed (m/yr, perceptually uniform colours) over the greyscale reference image, with arrows."""
    v = np.hypot(vx, vy)
    # The figure is ~900 px wide: draw every n-th background pixel, or matplotlib builds a
    # float64 RGBA copy of the whole scene (3.6 GB for a 10 980² Sentinel-2 tile).
    step = max(1, max(background.shape) // 2000)
    background, bg_transform = background[::step, ::step], bg_transform * Affine.scale(step)
    fig, ax = plt.subplots(figsize=(8, 7), constrained_layout=True)
    lo, hi = np.nanpercentile(background, [2, 98]) if np.isfinite(background).any() else (0, 1)
    ax.imshow(background, cmap="gray", vmin=lo, vmax=hi, extent=_extent(bg_transform, background.shape))
    vmax = np.nanpercentile(v, 99) if np.isfinite(v).any() else 1.0
    im = ax.imshow(v, cmap="viridis", vmin=0, vmax=vmax, alpha=0.75, extent=_extent(v_transform, v.shape))
    fig.colorbar(im, ax=ax, label="speed (m/yr)", shrink=0.8)
    stride = max(1, max(v.shape) // arrows)
    rows, cols = np.mgrid[0 : v.shape[0] : stride, 0 : v.shape[1] : stride]
    x = (v_transform.c + v_transform.a * (cols + 0.5)) / 1e3
    y = (v_transform.f + v_transform.e * (rows + 0.5)) / 1e3
    ax.quiver(x, y, vx[rows, cols], vy[rows, cols], color="white", angles="xy", scale_units="xy",
              scale=vmax / (stride * abs(v_transform.a) / 1e3) if vmax > 0 else None, width=0.003)
    ax.set_xlabel(f"easting (km, {crs})")
    ax.set_ylabel(f"northing (km, {crs})")
    ax.set_title(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _save(fig, path: str | Path) -> None:  # noqa: ANN001 - a matplotlib Figure
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def quality_panel(path: str | Path, vx: np.ndarray, vy: np.ndarray, reject_reason: np.ndarray,
                  interpolated: np.ndarray, stable: np.ndarray, glacier: np.ndarray, reasons: dict[str, int],
                  v_transform: Affine, crs: str, title: str) -> None:
    """Quality of one pair, three panels.

    (a) histograms of vx and vy (m/yr) over stable ground, where the truth is 0, with
    their median and NMAD; (b) share of points masked by each reason (%), over the
    whole map and over the glacier; (c) coverage map: measured, interpolated, masked.
    ``stable``/``glacier`` are boolean masks on the velocity grid.
    """
    from matplotlib.colors import ListedColormap

    from icetrack.postprocess.velocity import nmad

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), constrained_layout=True)
    ax = axes[0]
    on_rock = stable & np.isfinite(vx)
    if on_rock.any():
        both = np.concatenate([vx[on_rock], vy[on_rock]])
        lim = max(float(np.nanpercentile(np.abs(both), 99)), 1e-3)
        bins = np.linspace(-lim, lim, 41)
        for comp, name, colour in ((vx, "vx", "#1b9e77"), (vy, "vy", "#7570b3")):
            vals = comp[on_rock]
            ax.hist(vals, bins=bins, histtype="step", linewidth=1.8, color=colour,
                    label=f"{name}: median {np.median(vals):+.1f}, NMAD {nmad(vals):.1f} m/yr")
        ax.axvline(0, color="k", linewidth=0.8)
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no valid stable-ground points", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("velocity over stable ground (m/yr)")
    ax.set_ylabel("points (count)")
    ax.set_title(f"(a) stable ground, n = {int(on_rock.sum())}")

    ax = axes[1]
    names = list(reasons)
    share_all = [100 * float(((reject_reason & reasons[n]) > 0).mean()) for n in names]
    share_ice = [100 * float(((reject_reason & reasons[n]) > 0)[glacier].mean()) if glacier.any() else 0.0 for n in names]
    pos = np.arange(len(names))
    ax.barh(pos - 0.2, share_all, height=0.4, color="#999999", label="whole map")
    ax.barh(pos + 0.2, share_ice, height=0.4, color="#2c7fb8", label="glacier")
    ax.set_yticks(pos, [n.replace("_", " ") for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("points masked (%)")
    ax.set_ylabel("reason")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("(b) masked share by reason")

    ax = axes[2]
    status = np.where(np.isfinite(vx), np.where(interpolated, 1, 0), 2)
    cmap = ListedColormap(["#4daf4a", "#ffbf00", "#bbbbbb"])  # measured, interpolated, masked
    ax.imshow(status, cmap=cmap, vmin=-0.5, vmax=2.5, extent=_extent(v_transform, status.shape), interpolation="nearest")
    if glacier.any():
        x = (v_transform.c + v_transform.a * (np.arange(status.shape[1]) + 0.5)) / 1e3
        y = (v_transform.f + v_transform.e * (np.arange(status.shape[0]) + 0.5)) / 1e3
        ax.contour(x, y, glacier.astype(float), levels=[0.5], colors="k", linewidths=1.0)
    valid = 100 * float(np.isfinite(vx).mean())
    valid_ice = 100 * float(np.isfinite(vx)[glacier].mean()) if glacier.any() else float("nan")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=c, label=lab) for c, lab in zip(cmap.colors, ("measured", "interpolated", "masked"))],
              fontsize=8, loc="lower right")
    ax.set_xlabel(f"easting (km, {crs})")
    ax.set_ylabel(f"northing (km, {crs})")
    ax.set_title(f"(c) valid: {valid:.0f} % of map, {valid_ice:.0f} % of glacier")
    fig.suptitle(title)
    _save(fig, path)


def timeseries_plot(path: str | Path, series, reference=None, title: str = "") -> None:  # noqa: ANN001 - DataFrames
    """Speed (m/yr) against date, one panel per point; each pair is drawn at its centre date
    with its ±1σ error bar and a horizontal bar spanning its two acquisition dates.
    ``reference`` (columns point, mid_date, v, v_error[, date_start, date_end]) is drawn beside
    ours when given: dated values as open squares with a bar over the time they stand for,
    undated ones (sampled from a raster) as a dashed line."""
    import pandas as pd

    names = list(dict.fromkeys(series["point"]))
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 3.2 * max(len(names), 1)), squeeze=False, sharex=True,
                             constrained_layout=True)
    for ax, name in zip(axes[:, 0], names):
        s = series[series["point"] == name]
        mid = pd.to_datetime(s["mid_date"])
        d1, d2 = pd.to_datetime(s["acquisition_date_img1"]), pd.to_datetime(s["acquisition_date_img2"])
        ax.errorbar(mid, s["v"], yerr=s["v_error"], fmt="o", color="#2c7fb8", capsize=3, label="icetrack (±1σ)")
        ax.hlines(s["v"], d1, d2, color="#2c7fb8", alpha=0.35, linewidth=2)
        if reference is not None:
            r = reference[reference["point"] == name]
            dated = r[r["mid_date"].astype(str).str.len() > 0]
            undated = r[r["mid_date"].astype(str).str.len() == 0]
            if len(dated):
                ax.errorbar(pd.to_datetime(dated["mid_date"]), dated["v"], yerr=dated["v_error"], fmt="s",
                            mfc="none", color="#d95f02", capsize=3, label="ITS_LIVE reference (±1σ)")
                spans = dated[dated["date_start"].astype(str).str.len() > 0] if "date_start" in dated else dated[:0]
                if len(spans):  # the time each value stands for: an ITS_LIVE pair's images, a mosaic's year
                    ax.hlines(spans["v"], pd.to_datetime(spans["date_start"]), pd.to_datetime(spans["date_end"]),
                              color="#d95f02", alpha=0.35, linewidth=2)
            for _, row in undated.iterrows():
                ax.axhline(row["v"], color="#d95f02", linestyle="--", label="ITS_LIVE reference (mosaic)")
        lon, lat = s["lon"].iloc[0], s["lat"].iloc[0]
        ax.set_title(f"{name} ({lon:.4f}°, {lat:.4f}°)", fontsize=10)
        ax.set_ylabel("speed (m/yr)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    axes[-1, 0].set_xlabel("date (UTC; marker at the pair's centre date, bar spans its two images)")
    fig.autofmt_xdate()
    if title:
        fig.suptitle(title)
    _save(fig, path)


def reference_comparison(path: str | Path, ours: np.ndarray, reference: np.ndarray, glacier: np.ndarray,
                         stable: np.ndarray, v_transform: Affine, crs: str, stats: dict, reference_name: str,
                         title: str) -> None:
    """Our speed against a reference speed (e.g. ITS_LIVE) on the same cells, two panels.

    (a) scatter of our speed against the reference (m/yr), glacier and stable-ground points
    in two colours, with the 1:1 line and the median and NMAD of the difference; (b) map
    of the difference ours − reference (m/yr, diverging colours centred on 0) with the
    glacier outline. ``stats`` is :func:`icetrack.reference.itslive.comparison_stats`.
    """
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.4), constrained_layout=True)
    ax = axes[0]
    finite = np.isfinite(ours) & np.isfinite(reference)
    top = float(np.nanpercentile(np.concatenate([ours[finite], reference[finite]]), 99.5)) if finite.any() else 1.0
    for mask, label, colour, key in ((glacier, "glacier", "#2c7fb8", "glacier"),
                                     (stable, "stable ground", "#999999", "stable_ground")):
        sel = finite & mask
        s = stats[key]
        text = (f"{label}: n = {s['points']}, median Δ {s['median_difference_m_per_yr']:+.1f}, "
                f"NMAD {s['nmad_difference_m_per_yr']:.1f} m/yr" if s["points"] else f"{label}: no common points")
        ax.scatter(reference[sel], ours[sel], s=6, alpha=0.5, color=colour, label=text)
    ax.plot([0, top], [0, top], color="k", linewidth=0.8, label="1:1")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    ax.set_xlabel(f"{reference_name} speed (m/yr)")
    ax.set_ylabel("icetrack speed (m/yr)")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("(a) speed, icetrack against the reference")

    ax = axes[1]
    diff = ours - reference
    lim = float(np.nanpercentile(np.abs(diff), 98)) if np.isfinite(diff).any() else 1.0
    im = ax.imshow(diff, cmap="RdBu_r", vmin=-max(lim, 1e-3), vmax=max(lim, 1e-3),
                   extent=_extent(v_transform, diff.shape), interpolation="nearest")
    fig.colorbar(im, ax=ax, label="icetrack − reference speed (m/yr)", shrink=0.85)
    if glacier.any():
        x = (v_transform.c + v_transform.a * (np.arange(diff.shape[1]) + 0.5)) / 1e3
        y = (v_transform.f + v_transform.e * (np.arange(diff.shape[0]) + 0.5)) / 1e3
        ax.contour(x, y, glacier.astype(float), levels=[0.5], colors="k", linewidths=1.0)
    ax.set_xlabel(f"easting (km, {crs})")
    ax.set_ylabel(f"northing (km, {crs})")
    ax.set_title("(b) difference map (glacier outline in black)")
    fig.suptitle(title)
    _save(fig, path)
