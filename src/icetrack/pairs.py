"""Step 1b: choose image pairs from the scene table.

Scenes of one date (tiles of one pass) are mosaicked, so pairs are made of dates.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

PAIR_COLUMNS = ["pair", "ref_date", "sec_date", "dt_days", "ref_ids", "sec_ids", "cloud_fraction_max"]


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
                 max_pairs: int, same_orbit: bool = False, months: list[int] | None = None,
                 min_observed_fraction: float = 0.5) -> pd.DataFrame:
    """All date pairs within the time-separation bounds whose glacier cloud fraction is
    acceptable, least cloudy first, then shortest separation; at most ``max_pairs``."""
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
            if same_orbit and not set(a["orbits"].split(";")) & set(b["orbits"].split(";")):
                continue
            rows.append(dict(pair=f"{a['date']}_{b['date']}", ref_date=a["date"], sec_date=b["date"], dt_days=dt,
                             ref_ids=a["ids"], sec_ids=b["ids"], cloud_fraction_max=max(a["cloud"], b["cloud"])))
    pairs = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    pairs = pairs.sort_values(["cloud_fraction_max", "dt_days", "pair"]).head(max_pairs)
    return pairs.sort_values("pair").reset_index(drop=True)
