"""What happened to a pair, in words: the ``status`` and ``reason`` of quality.json.

A map can be empty for honest reasons (all cloud, a scene that misses the glacier,
surfaces too changed to match). The run still succeeds, but quality.json must say
``"status": "empty"`` and why, so an empty map is never mistaken for a result.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

# Stable ground should not move: a robust scatter (NMAD) of its offsets above this many
# pixels means most matches are noise (good pairs give ~0.01-0.2 px), so the map is
# blanked rather than delivered as if it were a measurement.
MAX_STABLE_NMAD_PX = 1.0


def input_validity(ref: np.ndarray, sec: np.ndarray) -> dict[str, float]:
    """Fractions of finite pixels of the two images on the common grid (what track records)."""
    return {"ref_valid_fraction": float(np.isfinite(ref).mean()) if ref.size else 0.0,
            "sec_valid_fraction": float(np.isfinite(sec).mean()) if sec.size else 0.0}


def judge(vel, inputs: dict[str, float] | None = None):  # noqa: ANN001, ANN201 - postprocess.Velocity
    """(velocity, status dict): the velocity blanked when stable ground shows it is noise."""
    nmad = vel.stats.get("stable_ground", {}).get("nmad_px", [math.nan, math.nan])
    worst = max((v for v in nmad if v is not None and math.isfinite(v)), default=math.nan)
    if worst > MAX_STABLE_NMAD_PX:
        nan = np.full(vel.vx.shape, np.nan, np.float32)
        stats = {**vel.stats, "valid_fraction": 0.0, "valid_fraction_glacier": 0.0}
        vel = dataclasses.replace(vel, vx=nan, vy=nan.copy(), vx_error=nan.copy(), vy_error=nan.copy(),
                                  interpolated=np.zeros(vel.vx.shape, bool), stats=stats)
        return vel, _empty(f"the matches are noise: offsets on stable ground scatter by {worst:.2f} px (NMAD), "
                           f"more than {MAX_STABLE_NMAD_PX:g} px, so no velocity is reported (images too different "
                           "to match: surface change, cloud or haze, or the wrong pair)")
    return vel, pair_status(vel.stats, inputs)


def pair_status(stats: dict[str, Any], inputs: dict[str, float] | None = None) -> dict[str, str]:
    """``{"status": "ok" | "empty", "reason": ...}`` from the postprocess statistics.

    ``stats`` are :func:`icetrack.postprocess.velocity.offsets_to_velocity`'s; ``inputs`` the
    valid fractions of the two images when the track step recorded them. "empty"
    means no valid velocity on the glacier (or anywhere, when the glacier covers no
    point of the output grid).
    """
    inputs = inputs or {}
    points, tracked = stats.get("points", 0), stats.get("points_tracked", 0)
    valid = stats.get("valid_fraction", 0.0)
    on_glacier = stats.get("valid_fraction_glacier")
    if points == 0:
        return _empty("the output grid holds no point: the grid is smaller than one tracking chip")
    for name, label in (("ref_valid_fraction", "reference"), ("sec_valid_fraction", "secondary")):
        if name in inputs and inputs[name] <= 0:
            return _empty(f"the {label} image has no valid pixel on the glacier grid: it is all cloud or no data, "
                          "or the scene does not overlap the glacier")
    if tracked == 0:
        return _empty("no point could be tracked: no chip had at least 90 % valid (cloud-free) pixels in both "
                      "images with any texture to match")
    if not valid > 0:
        rejected = stats.get("rejected_fraction", {})
        causes = ", ".join(f"{k} {100 * v:.0f} %" for k, v in sorted(rejected.items(), key=lambda kv: -kv[1])
                           if v > 0 and k != "not_tracked")
        return _empty(f"all {tracked} tracked points were rejected as unreliable matches ({causes}); "
                      "the images are too different to match (surface change, cloud, or the wrong pair)")
    if on_glacier is None or math.isnan(on_glacier):  # NaN: the outline covers no output point
        return {"status": "ok", "reason": f"valid velocities at {100 * valid:.1f} % of points; the glacier outline "
                                          "covers no output point (smaller than step_px), so none are on the glacier"}
    if not on_glacier > 0:
        return _empty(f"no valid velocity on the glacier (valid at {100 * valid:.1f} % of points elsewhere): "
                      "cloud or rejected matches cover the whole glacier")
    return {"status": "ok", "reason": f"valid velocities at {100 * valid:.1f} % of points "
                                      f"({100 * on_glacier:.1f} % of glacier points)"}


def _empty(reason: str) -> dict[str, str]:
    return {"status": "empty", "reason": reason}


def run_summary(glacier_ids: list[str], results: str = "results") -> list[str]:
    """One line per glacier after a run: pairs made, and how many maps are empty and why,
    so that a run with nothing to show never looks like a plain success."""
    import json
    from pathlib import Path

    import pandas as pd

    lines = []
    for gid in glacier_ids:
        pairs_csv = Path(results) / gid / "pairs.csv"
        if not pairs_csv.exists():
            continue
        pairs = pd.read_csv(pairs_csv, dtype=str)["pair"].tolist()
        if not pairs:
            lines.append(f"icetrack: {gid}: no image pair — no two scenes in results/{gid}/scenes.csv meet the "
                         "pairs.* settings (dates, separation, cloud over the glacier); no velocity map was made")
            continue
        empty = []
        for pair in pairs:
            quality = Path(results) / gid / pair / "quality.json"
            if quality.exists():
                q = json.loads(quality.read_text())
                if q.get("status") == "empty":
                    empty.append(f"{pair}: {q.get('reason', '')}")
        lines.append(f"icetrack: {gid}: {len(pairs)} pair(s), {len(pairs) - len(empty)} with a velocity map"
                     + (f"; EMPTY {'; '.join(empty)}" if empty else ""))
    return lines
