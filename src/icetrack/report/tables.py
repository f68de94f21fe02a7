"""Tables of the Snakemake report: scenes with cloud fractions, chosen pairs, quality across pairs.

Snakemake's HTML report shows PNG and HTML results, so each table is written as a small
standalone HTML page (and the quality table as CSV too, for users).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

# The columns of the scene table (icetrack.query.scenes.SCENE_COLUMNS) that the report shows.
REPORT_SCENE_COLUMNS = ["id", "date", "platform", "orbit", "cloud_cover_tile_pct", "cloud_fraction_glacier",
                 "glacier_observed_fraction"]

_STYLE = ("body{font-family:sans-serif;font-size:13px;margin:12px}table{border-collapse:collapse}"
          "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}"
          "td:first-child,th:first-child{text-align:left}caption{text-align:left;padding:6px 0}")


def quality_summary(quality_paths: list[str | Path]) -> pd.DataFrame:
    """One row per pair: dt, points, valid shares, masked shares, stable-ground bias and scatter."""
    rows = []
    for path in quality_paths:
        q = json.loads(Path(path).read_text())
        sg = q.get("stable_ground", {})
        nmad = sg.get("nmad_m_per_yr", [float("nan")] * 2)
        bias = sg.get("median_offset_m_per_yr", [float("nan")] * 2)
        rows.append({
            "pair": q["pair"], "dt_days": q["dt_days"], "points": q["points"], "points_tracked": q["points_tracked"],
            "valid_pct": 100 * q["valid_fraction"], "valid_glacier_pct": 100 * q["valid_fraction_glacier"],
            "interpolated_points": q.get("interpolated_points", 0),
            **{f"masked_{k}_pct": 100 * v for k, v in q.get("rejected_fraction", {}).items()},
            "stable_points": sg.get("points", 0),
            "stable_bias_vx_m_per_yr": bias[0], "stable_bias_vy_m_per_yr": bias[1],
            "stable_nmad_vx_m_per_yr": nmad[0], "stable_nmad_vy_m_per_yr": nmad[1],
        })
    return pd.DataFrame(rows)


def scenes_table(scenes_csv: str | Path) -> pd.DataFrame:
    """The queried scenes with their cloud fractions (hrefs left out: they may be signed URLs)."""
    scenes = pd.read_csv(scenes_csv, dtype=str, keep_default_na=False)
    return scenes[[c for c in REPORT_SCENE_COLUMNS if c in scenes.columns]]


def html_table(df: pd.DataFrame, title: str, caption: str) -> str:
    """A standalone HTML page holding ``df`` (numbers to 3 significant decimals)."""
    body = df.to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="–", border=0)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h3>{html.escape(title)}</h3>"
            f"<p>{html.escape(caption)}</p>{body}</body></html>")


def summary_line(glacier: str, quality: pd.DataFrame) -> str:
    """One line: pairs, points tracked, valid share over the map and the glacier."""
    if quality.empty:
        return f"{glacier}: no pairs"
    tracked, points = int(quality["points_tracked"].sum()), int(quality["points"].sum())
    return (f"{glacier}: {len(quality)} pairs, {tracked:,} of {points:,} points tracked, valid "
            f"{quality['valid_pct'].mean():.1f} % of the map and {quality['valid_glacier_pct'].mean():.1f} % "
            f"of the glacier (mean over pairs)")
