"""Velocity time series at points of interest, sampled from a glacier's cube.

Points come from the glacier table's ``points`` column: ``name:lon:lat;name2:lon:lat``
(WGS 84 degrees). Each point takes the value of the cube cell that contains it.
An optional reference (e.g. ITS_LIVE) is read from a CSV (``point, mid_date, v
[, v_error]``) or sampled from a raster (GeoTIFF/NetCDF of speed in m/yr) at the
same points, and drawn beside ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from pyproj import CRS, Transformer

TIMESERIES_COLUMNS = ["point", "lon", "lat", "x", "y", "mid_date", "acquisition_date_img1", "acquisition_date_img2",
                      "date_dt_days", "v", "v_error", "vx", "vy", "pair"]
# A reference series: m/yr; dates ISO or "" (undated, e.g. sampled from a raster); the
# optional validity interval date_start–date_end (an annual mosaic's year, an ITS_LIVE pair's images).
REFERENCE_COLUMNS = ["point", "mid_date", "v", "v_error", "date_start", "date_end"]


@dataclass(frozen=True)
class Point:
    """A point of interest: a name and WGS 84 longitude/latitude (degrees)."""

    name: str
    lon: float
    lat: float


def parse_points(text: str, where: str = "points") -> list[Point]:
    """``name:lon:lat;name2:lon:lat`` → points; raises ValueError naming the bad entry."""
    points: list[Point] = []
    for entry in filter(None, (e.strip() for e in (text or "").split(";"))):
        parts = entry.split(":")
        try:
            name, lon, lat = parts[0].strip(), float(parts[1]), float(parts[2])
            if len(parts) != 3 or not name:
                raise ValueError
        except (ValueError, IndexError):
            raise ValueError(f"{where} = {entry!r}: expected 'name:lon:lat' (e.g. 'trunk:-73.05:-49.9')") from None
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError(f"{where} = {entry!r}: longitude must be within ±180 and latitude within ±90 degrees")
        if name in {p.name for p in points}:
            raise ValueError(f"{where} = {entry!r}: point name {name!r} is used twice")
        points.append(Point(name, lon, lat))
    return points


def points_xy(points: list[Point], crs: str) -> list[tuple[float, float]]:
    """The points' (x, y) in ``crs`` (metres for a projected grid)."""
    tr = Transformer.from_crs("EPSG:4326", CRS.from_user_input(crs), always_xy=True)
    return [tuple(map(float, tr.transform(p.lon, p.lat))) for p in points]


def _cell(coord: np.ndarray, value: float) -> int | None:
    """Index of the cell of a regular pixel-centre coordinate that contains ``value`` (None: outside)."""
    step = float(coord[1] - coord[0]) if coord.size > 1 else 1.0
    i = int(np.floor((value - coord[0]) / step + 0.5))
    return i if 0 <= i < coord.size else None


def sample_cube(cube: xr.Dataset, points: list[Point]) -> pd.DataFrame:
    """One row per point and pair: dates, speed and its error, vx, vy (m/yr; NaN where masked).

    A point outside the cube's grid raises ValueError (it is a configuration mistake).
    """
    crs = cube["mapping"].attrs["spatial_ref"]
    rows = []
    for p, (x, y) in zip(points, points_xy(points, crs)):
        ix, iy = _cell(cube["x"].values, x), _cell(cube["y"].values, y)
        if ix is None or iy is None:
            raise ValueError(f"point {p.name!r} ({p.lon}, {p.lat}) lies outside the glacier's grid "
                             f"(x {cube['x'].values.min():.0f}–{cube['x'].values.max():.0f}, "
                             f"y {cube['y'].values.min():.0f}–{cube['y'].values.max():.0f} in {CRS.from_user_input(crs).name})")
        at = cube.isel(x=ix, y=iy)
        for k in range(cube.sizes["mid_date"]):
            layer = at.isel(mid_date=k)
            rows.append({
                "point": p.name, "lon": p.lon, "lat": p.lat, "x": x, "y": y,
                "mid_date": pd.Timestamp(layer["mid_date"].values).date().isoformat(),
                "acquisition_date_img1": pd.Timestamp(layer["acquisition_date_img1"].values).date().isoformat(),
                "acquisition_date_img2": pd.Timestamp(layer["acquisition_date_img2"].values).date().isoformat(),
                "date_dt_days": float(layer["date_dt"]),
                "v": float(layer["v"]), "v_error": float(layer["v_error"]),
                "vx": float(layer["vx"]), "vy": float(layer["vy"]), "pair": str(layer["pair"].values),
            })
    return pd.DataFrame(rows, columns=TIMESERIES_COLUMNS)


def read_reference(path: str | Path | None, points: list[Point]) -> pd.DataFrame | None:
    """An optional reference series (:data:`REFERENCE_COLUMNS`, m/yr), or None.

    A CSV is read as is (``date`` is accepted for ``mid_date``); a raster (GeoTIFF or
    NetCDF readable by GDAL, band 1 = speed in m/yr, optional band 2 = its error) gives
    one undated value per point, drawn as a horizontal line.
    """
    if not path or not Path(path).exists():
        return None
    path = Path(path)
    if path.suffix.lower() == ".csv":
        ref = pd.read_csv(path).rename(columns={"date": "mid_date"})
        missing = {"point", "v"} - set(ref.columns)
        if missing:
            raise ValueError(f"reference {path}: missing column(s) {', '.join(sorted(missing))}; "
                             "expected point, mid_date, v[, v_error] (m/yr)")
        for column, empty in (("v_error", np.nan), ("mid_date", ""), ("date_start", ""), ("date_end", "")):
            if column not in ref:
                ref[column] = empty
        return ref[REFERENCE_COLUMNS].fillna({"mid_date": "", "date_start": "", "date_end": ""})
    rows = []
    with rasterio.open(path) as src:
        for p, (x, y) in zip(points, points_xy(points, src.crs.to_string())):
            vals = next(src.sample([(x, y)], masked=True))
            v = float(vals[0]) if not np.ma.is_masked(vals[0]) else np.nan
            err = float(vals[1]) if src.count > 1 and not np.ma.is_masked(vals[1]) else np.nan
            rows.append({"point": p.name, "mid_date": "", "v": v, "v_error": err, "date_start": "", "date_end": ""})
    return pd.DataFrame(rows, columns=REFERENCE_COLUMNS)


def attach_reference(series: pd.DataFrame, reference: pd.DataFrame | None) -> pd.DataFrame:
    """``series`` with the reference beside each of our rows: ``reference_v``,
    ``reference_v_error`` (medians, m/yr) and ``reference_count``, over the reference values
    of the same point that overlap our pair in time — centred between our two images, or
    valid (``date_start``–``date_end``, e.g. an annual mosaic's year) at our centre date.
    Undated values (a raster) apply to every row. No reference: the columns are NaN / 0.
    """
    out = series.copy()
    out["reference_v"], out["reference_v_error"], out["reference_count"] = np.nan, np.nan, 0
    if reference is None or reference.empty:
        return out
    ref = reference.copy()
    day = lambda col: pd.to_datetime(ref[col].replace("", None), errors="coerce")  # noqa: E731
    mid, start, end = day("mid_date"), day("date_start"), day("date_end")
    for i, row in out.iterrows():
        d1, d2, centre = (pd.Timestamp(row[c]) for c in ("acquisition_date_img1", "acquisition_date_img2", "mid_date"))
        same = ref["point"] == row["point"]
        undated = mid.isna()
        centred = (mid >= d1) & (mid <= d2)
        covering = (start <= centre) & (end >= centre)
        hit = ref[same & (undated | centred | covering)]
        if len(hit):
            out.loc[i, ["reference_v", "reference_v_error", "reference_count"]] = [
                float(np.nanmedian(hit["v"])), float(np.nanmedian(hit["v_error"])) if hit["v_error"].notna().any()
                else np.nan, len(hit)]
    out["reference_count"] = out["reference_count"].astype(int)
    return out
