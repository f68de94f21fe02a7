"""Step 1b: choose image pairs from the scene table.

Scenes of one date (tiles of one pass) are mosaicked, so pairs are made of dates. A
pair is kept when both dates are in season (``months``), enough of the glacier is seen
and cloud-free on both, and their separation is within bounds; same-orbit pairs (same
Sentinel-2 relative orbit, same Landsat WRS-2 path: the same viewing geometry, so no
parallax from terrain) can be required or only preferred. The best ``max_pairs`` are
kept: (same orbit first when preferred), least cloud, then shortest separation.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

PAIR_COLUMNS = ["pair", "ref_date", "sec_date", "dt_days", "ref_ids", "sec_ids", "cloud_fraction_max", "same_orbit"]
# pairs.same_orbit: true = require a shared orbit, "prefer" = rank such pairs first, false = ignore orbits.
SAME_ORBIT_MODES = (True, False, "prefer")


def dates_table(scenes: pd.DataFrame) -> pd.DataFrame:
    """One row per acquisition date: scene ids, worst glacier cloud fraction, orbit(s)."""
    if scenes.empty:
        return pd.DataFrame(columns=["date", "ids", "cloud", "orbits", "observed"])
    g = scenes.groupby("date", sort=True)
    return pd.DataFrame({
        "ids": g["id"].agg(lambda s: ";".join(s)),
        "cloud": g["cloud_fraction_glacier"].max(),
        "observed": g["glacier_observed_fraction"].max(),
        "orbits": g["orbit"].agg(lambda s: ";".join(sorted(set(map(str, s))))),
    }).reset_index()


def select_pairs(scenes: pd.DataFrame, min_dt_days: int, max_dt_days: int, max_cloud_fraction: float,
                 max_pairs: int, same_orbit: bool | str = False, months: list[int] | None = None,
                 min_observed_fraction: float = 0.5) -> pd.DataFrame:
    """Date pairs separated by ``min_dt_days``–``max_dt_days`` days whose glacier cloud
    fraction (0–1) is at most ``max_cloud_fraction`` and observed fraction at least
    ``min_observed_fraction`` on both dates, both in ``months`` (1–12; empty = all);
    ``same_orbit`` true/"prefer"/false; at most ``max_pairs``, sorted by pair name."""
    if same_orbit not in SAME_ORBIT_MODES:
        raise ValueError(f"pairs.same_orbit = {same_orbit!r}; expected true, false or 'prefer'")
    dates = dates_table(scenes)
    day = {d: datetime.strptime(d, "%Y%m%d") for d in dates["date"]}
    usable = dates[(dates["cloud"] <= max_cloud_fraction) & (dates["observed"] >= min_observed_fraction)]
    if months:
        usable = usable[[day[d].month in months for d in usable["date"]]]
    rows = []
    recs = usable.to_dict("records")
    for i, a in enumerate(recs):
        for b in recs[i + 1 :]:
            dt = (day[b["date"]] - day[a["date"]]).days
            if not (min_dt_days <= dt <= max_dt_days):
                continue
            shared = bool(set(a["orbits"].split(";")) & set(b["orbits"].split(";")) - {""})
            if same_orbit is True and not shared:
                continue
            rows.append(dict(pair=f"{a['date']}_{b['date']}", ref_date=a["date"], sec_date=b["date"], dt_days=dt,
                             ref_ids=a["ids"], sec_ids=b["ids"], cloud_fraction_max=max(a["cloud"], b["cloud"]),
                             same_orbit=shared))
    pairs = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    pairs["orbit_rank"] = (~pairs["same_orbit"].astype(bool)).astype(int) if same_orbit == "prefer" else 0
    pairs = pairs.sort_values(["orbit_rank", "cloud_fraction_max", "dt_days", "pair"]).head(max_pairs)
    pairs = pairs.drop(columns="orbit_rank")
    return pairs.sort_values("pair").reset_index(drop=True)
