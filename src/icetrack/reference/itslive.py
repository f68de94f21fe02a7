"""ITS_LIVE surface velocity as an optional reference layer, on the glacier's grid.

Two ITS_LIVE products (NASA MEaSUREs ITS_LIVE, public bucket ``its-live-data``) can be read:

* **datacubes** — Zarr stores of every image-pair velocity on a 120 m grid, one per
  100 km tile in a UTM or polar-stereographic CRS, indexed by ``mid_date``, with ``vx``,
  ``vy``, ``v``, ``v_error`` (m/yr, int16 with ``-32767`` missing), ``date_dt`` (days),
  ``acquisition_date_img1/2`` and a ``mapping`` grid-mapping variable (``spatial_epsg``,
  ``GeoTransform``). The cube covering a point is found in the cube catalogue, a GeoJSON
  FeatureCollection (``datacubes/catalog_v02.json``) whose features are the cubes'
  footprints in lon/lat with properties ``zarr_url``, ``data_epsg``, ``geometry_epsg``,
  ``roi_percent_coverage`` and ``datacube_exist``.
* **annual mosaics** — one Cloud-Optimised GeoTIFF per RGI region, year and variable,
  ``velocity_mosaic/v2/annual/cog/ITS_LIVE_velocity_120m_<RGI region>_<year>_v02_<var>.tif``
  (``RGI05A`` …; variables ``v``, ``vx``, ``vy``, ``v_error`` in m/yr).

Only the glacier window is read: the cube's chunks that cover it (each chunk holds the
whole time axis of a small tile, so a window's series is a few chunk reads) or the COG
blocks that cover it (GDAL HTTP range requests). Values are resampled onto the glacier
grid and ``vx``/``vy`` are rotated from the product's map axes into the grid's
east/north axes (a polar-stereographic x axis is not the UTM east axis).
"""

from __future__ import annotations

import json
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.warp import Resampling, reproject, transform_bounds
from scipy.interpolate import RectBivariateSpline
from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import shape

from icetrack import __version__
from icetrack.outputs.geotiff import GEOTIFF_BANDS
from icetrack.fetch.window import reproject_to_grid
from icetrack.access.http import gdal_options
from icetrack.common.grid import Grid
from icetrack.postprocess.velocity import nmad
from icetrack.common.provenance import redact
from icetrack.common.rasters import write_geotiff, xy_coords
from icetrack.outputs.timeseries import points_xy

ITSLIVE_ROOT = "https://its-live-data.s3.amazonaws.com"
CUBE_CATALOG_URL = f"{ITSLIVE_ROOT}/datacubes/catalog_v02.json"
MOSAIC_URL_TEMPLATE = (f"{ITSLIVE_ROOT}/velocity_mosaic/v2/annual/cog/"
                       "ITS_LIVE_velocity_120m_{region}_{year}_v02_{variable}.tif")
# Spellings of m/yr found in ITS_LIVE products (granules "m/y", cubes "m/y" or "meter/year").
VELOCITY_UNITS = {"m/y", "m/yr", "m/year", "meter/year", "meters/year", "m yr-1", "m a-1"}
VARIABLES = ("vx", "vy", "v", "v_error")  # what a reference layer holds, and the mosaics' files
# Read from a cube: v is not, since a pair's v is by definition hypot(vx, vy) (autoRIFT), and a
# cube window's chunks hold its whole time axis, so each variable skipped is a quarter less to fetch.
CUBE_READ = ("vx", "vy", "v_error")
MISSING_INT16 = -32767  # ITS_LIVE's missing value for its int16 velocities



@dataclass
class ReferenceLayer:
    """A reference velocity field on a glacier grid: ``vx`` east, ``vy`` north, ``v`` speed,
    ``v_error`` its 1σ error, all float32 m/yr with NaN where ITS_LIVE has no value."""

    vx: np.ndarray
    vy: np.ndarray
    v: np.ndarray
    v_error: np.ndarray
    grid: Grid
    attrs: dict[str, str] = field(default_factory=dict)  # what was read: product, URLs, period, layers


# ---------------------------------------------------------------- geometry helpers


def grid_centre_lonlat(grid: Grid) -> tuple[float, float]:
    """WGS 84 (lon, lat) of the grid's centre, degrees."""
    w, s, e, n = grid.bounds
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform((w + e) / 2, (s + n) / 2)
    return float(lon), float(lat)


ROTATION_SPACING_M = 500.0  # the axes' rotation is computed this far apart, then interpolated


def _unit_jacobian(xs: np.ndarray, ys: np.ndarray, src: CRS, dst: CRS) -> list[np.ndarray]:
    """[j11, j12, j21, j22] of the map src → dst at the points (xs, ys) of dst, divided by
    sqrt|det J| so that it turns a vector without scaling it (finite differences, 10 m)."""
    sx, sy = Transformer.from_crs(dst, src, always_xy=True).transform(xs, ys)
    to_dst = Transformer.from_crs(src, dst, always_xy=True)
    step = 10.0  # m; small against the 120 m product pixel, large against rounding
    ex_x, ex_y = to_dst.transform(sx + step, sy)  # image of the source x unit vector
    ey_x, ey_y = to_dst.transform(sx, sy + step)  # image of the source y unit vector
    jac = [(ex_x - xs) / step, (ey_x - xs) / step, (ex_y - ys) / step, (ey_y - ys) / step]
    norm = np.sqrt(np.abs(jac[0] * jac[3] - jac[1] * jac[2]))
    return [j / norm for j in jac]


def rotate_to_grid(vx: np.ndarray, vy: np.ndarray, src_crs: str | CRS, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Vector components along ``src_crs``'s map axes, given on ``grid``'s pixels → components
    along the grid CRS's x (east) and y (north) axes, same magnitude (m/yr).

    J / sqrt|det J|, J the Jacobian of the map src → grid, rotates (and, for a non-conformal
    pair, shears) a vector without changing its length by the projections' scale factors,
    since ITS_LIVE's velocities are already true ground speeds (``map_scale_corrected``).
    J is taken at pixel centres ``ROTATION_SPACING_M`` apart and bilinearly interpolated in
    between: the meridian convergence changes by ~1e-7 rad/m, so this costs < 1e-4 of the
    speed and spares millions of projections on a 10 m grid.
    """
    src, dst = CRS.from_user_input(src_crs), CRS.from_user_input(grid.crs)
    if src == dst:
        return vx, vy
    stride = max(1, int(round(ROTATION_SPACING_M / grid.resolution_m)))
    if min(grid.height, grid.width) < 2:
        stride = 1  # a one-row or one-column grid: no 2-D interpolation
    rows = np.unique(np.r_[np.arange(0, grid.height, stride), grid.height - 1])
    cols = np.unique(np.r_[np.arange(0, grid.width, stride), grid.width - 1])
    x, y = xy_coords(grid.transform, (grid.height, grid.width))
    jac = _unit_jacobian(*np.meshgrid(x[cols], y[rows]), src, dst)
    if stride > 1:
        full_rows, full_cols = np.arange(grid.height), np.arange(grid.width)
        jac = [RectBivariateSpline(rows, cols, j, kx=1, ky=1)(full_rows, full_cols) for j in jac]
    j11, j12, j21, j22 = jac
    return (j11 * vx + j12 * vy).astype(np.float32), (j21 * vx + j22 * vy).astype(np.float32)


def _check_units(units: str, what: str) -> None:
    if units.strip() not in VELOCITY_UNITS:
        raise ValueError(f"{what}: units = {units!r}; expected a velocity in m/yr ({', '.join(sorted(VELOCITY_UNITS))})")


# ---------------------------------------------------------------- datacubes


def find_cube_url(catalog_url: str, lon: float, lat: float) -> str:
    """``zarr_url`` of the ITS_LIVE cube whose footprint contains (lon, lat), from the cube
    catalogue GeoJSON (a URL or a path). Cubes flagged ``datacube_exist = 0`` are skipped;
    when footprints overlap, the one with the most ice (``roi_percent_coverage``) wins."""
    try:
        text = Path(catalog_url).read_text() if "://" not in catalog_url else _http_text(catalog_url)
        catalog = json.loads(text)
    except (OSError, ValueError) as error:  # unreachable, 404, not JSON
        raise ValueError(f"reference.catalog = {catalog_url!r}: cannot be read as the ITS_LIVE cube catalogue "
                         f"(GeoJSON) ({str(error).splitlines()[0][:160]})") from None
    here = ShapelyPoint(lon, lat)
    hits = []
    for feature in catalog.get("features", []):
        props = feature.get("properties") or {}
        if not props.get("zarr_url") or props.get("datacube_exist", 1) == 0:
            continue
        if shape(feature["geometry"]).covers(here):
            hits.append((float(props.get("roi_percent_coverage", 0.0)), props["zarr_url"]))
    if not hits:
        raise ValueError(f"reference.catalog = {catalog_url!r}: no ITS_LIVE cube covers lon {lon:.4f}, lat {lat:.4f} "
                         f"(searched {len(catalog.get('features', []))} cubes)")
    return max(hits)[1]


def _http_text(url: str, timeout_s: float = 60) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - configured URL
        return response.read().decode()


def open_cube(url: str) -> xr.Dataset:
    """The cube, lazily: only its metadata is read here (consolidated ``.zmetadata`` when present)."""
    kwargs = dict(engine="zarr", chunks=None, decode_timedelta=False, mask_and_scale=True)
    try:
        try:
            return xr.open_dataset(url, consolidated=True, **kwargs)
        except (KeyError, FileNotFoundError):  # no .zmetadata: read the per-array metadata
            return xr.open_dataset(url, consolidated=False, **kwargs)
    except (OSError, KeyError, ValueError) as error:  # 404, refused, timeout, not a Zarr store
        detail = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise ValueError(f"reference: ITS_LIVE cube {url} cannot be opened as a Zarr store ({detail})") from None


def cube_crs(cube: xr.Dataset) -> CRS:
    """The cube's CRS, from ``mapping.spatial_epsg`` (ITS_LIVE) or its WKT."""
    attrs = cube["mapping"].attrs if "mapping" in cube else {}
    for key in ("spatial_epsg", "crs_wkt", "spatial_ref"):
        if attrs.get(key):
            value = attrs[key]
            return CRS.from_epsg(int(value)) if key == "spatial_epsg" else CRS.from_wkt(value)
    if cube.attrs.get("projection"):
        return CRS.from_epsg(int(cube.attrs["projection"]))
    raise ValueError("ITS_LIVE cube has no 'mapping' variable with spatial_epsg or crs_wkt: cannot place it")


def cube_window(cube: xr.Dataset, grid: Grid, margin_cells: int = 2) -> xr.Dataset:
    """The part of ``cube`` (still lazy) covering ``grid`` plus a margin of cube cells."""
    crs = cube_crs(cube)
    w, s, e, n = transform_bounds(grid.crs, crs, *grid.bounds, densify_pts=21)
    x, y = cube["x"].values, cube["y"].values
    dx, dy = abs(float(x[1] - x[0])), abs(float(y[1] - y[0]))
    pad_x, pad_y = margin_cells * dx, margin_cells * dy
    cols = np.flatnonzero((x >= w - pad_x) & (x <= e + pad_x))
    rows = np.flatnonzero((y >= s - pad_y) & (y <= n + pad_y))
    if cols.size == 0 or rows.size == 0:
        raise ValueError(f"ITS_LIVE cube ({x.min():.0f}–{x.max():.0f} E, {y.min():.0f}–{y.max():.0f} N in "
                         f"{crs.to_string()}) does not overlap the glacier grid")
    return cube.isel(x=slice(cols[0], cols[-1] + 1), y=slice(rows[0], rows[-1] + 1))


def date_dt_days(cube: xr.Dataset) -> np.ndarray:
    """``date_dt`` in days, whether decoded as timedelta64 or stored as numbers with a CF
    time unit (ITS_LIVE: ``units = "days"``)."""
    dt = cube["date_dt"].values
    if np.issubdtype(dt.dtype, np.timedelta64):
        return dt / np.timedelta64(1, "D")
    units = str(cube["date_dt"].attrs.get("units", "days")).strip().lower()
    per_day = {"days": 1.0, "day": 1.0, "d": 1.0, "hours": 24.0, "seconds": 86400.0, "s": 86400.0,
               "milliseconds": 86400e3, "microseconds": 86400e6, "nanoseconds": 86400e9}
    if units not in per_day:
        raise ValueError(f"ITS_LIVE variable 'date_dt': units = {units!r}; expected a time span such as 'days'")
    return dt.astype(np.float64) / per_day[units]


def select_layers(cube: xr.Dataset, start: str, end: str, min_dt_days: float = 0, max_dt_days: float = 1e9) -> np.ndarray:
    """Indices along ``mid_date`` of the pairs centred in [start, end] with ``date_dt`` in
    [min_dt_days, max_dt_days], sorted by date (ITS_LIVE cubes are not sorted in time)."""
    mid = pd.to_datetime(cube["mid_date"].values)
    dt = date_dt_days(cube)
    keep = (mid >= pd.Timestamp(start)) & (mid <= pd.Timestamp(end) + pd.Timedelta(days=1)) \
        & (dt >= min_dt_days) & (dt <= max_dt_days)
    idx = np.flatnonzero(keep)
    return idx[np.argsort(mid[idx], kind="stable")]


def _float_m_per_yr(da: xr.DataArray) -> np.ndarray:
    """A velocity array as float32 m/yr with NaN for ITS_LIVE's missing values."""
    _check_units(str(da.attrs.get("units", "")), f"ITS_LIVE variable {da.name!r}")
    a = da.values.astype(np.float32)
    a[a == MISSING_INT16] = np.nan  # in case the store declares missing_value but no _FillValue
    return a


def load_cube_window(url: str, grid: Grid, start: str, end: str, min_dt_days: float = 0,
                     max_dt_days: float = 1e9) -> xr.Dataset:
    """The cube's glacier window for the chosen pairs, loaded: float32 m/yr ``vx``, ``vy``,
    ``v_error`` on (mid_date, y, x) and ``v`` = hypot(vx, vy), ``date_dt`` (days), acquisition
    dates; ``attrs['crs']`` is its CRS."""
    cube = open_cube(url)
    window = cube_window(cube, grid)
    idx = select_layers(window, start, end, min_dt_days, max_dt_days)
    if idx.size == 0:
        raise ValueError(f"ITS_LIVE cube {url}: no image pair centred within {start}–{end} with "
                         f"{min_dt_days:g} ≤ date_dt ≤ {max_dt_days:g} days")
    chosen = window.isel(mid_date=idx)
    out = xr.Dataset(coords={"mid_date": chosen["mid_date"].values, "y": chosen["y"].values, "x": chosen["x"].values})
    for name in CUBE_READ:
        out[name] = (chosen[name].dims, _float_m_per_yr(chosen[name]), {"units": "m/yr"})
    out["v"] = np.hypot(out["vx"], out["vy"]).assign_attrs(units="m/yr")
    out["date_dt"] = ("mid_date", date_dt_days(chosen), {"units": "days"})
    for name in ("acquisition_date_img1", "acquisition_date_img2"):
        if name in chosen:
            out[name] = ("mid_date", pd.to_datetime(chosen[name].values).values)
    out.attrs.update({"crs": cube_crs(cube).to_string(), "url": url})
    return out


def _window_transform(window: xr.Dataset) -> tuple[np.ndarray, Affine, bool]:
    """(row order making y descend, north-up transform of the pixel corners, flipped?) of a window."""
    x, y = window["x"].values, window["y"].values
    dx = float(x[1] - x[0]) if x.size > 1 else 120.0
    flip = y.size > 1 and y[1] > y[0]
    y_desc = y[::-1] if flip else y
    dy = float(y_desc[0] - y_desc[1]) if y.size > 1 else 120.0
    return y_desc, Affine(dx, 0, x[0] - dx / 2, 0, -dy, y_desc[0] + dy / 2), flip


def resample_to_grid(array: np.ndarray, src_transform: Affine, src_crs: str, grid: Grid,
                     resampling: Resampling = Resampling.bilinear) -> np.ndarray:
    """A 2-D float array (NaN = missing) on ``grid``, NaN outside the source."""
    out = np.full((grid.height, grid.width), np.nan, np.float32)
    reproject(array.astype(np.float32), out, src_transform=src_transform, src_crs=src_crs, src_nodata=np.nan,
              dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan, resampling=resampling)
    return out


def cube_reference(window: xr.Dataset, grid: Grid, resampling: str = "bilinear") -> ReferenceLayer:
    """The median over the window's pairs of vx and vy (m/yr) on ``grid``; ``v`` is their
    hypotenuse, as ITS_LIVE defines the speed of its composites and mosaics.

    A median because single pairs carry outliers. The speed is not the median of the pairs'
    speeds: noise makes every |v| positive, so that median is biased high on slow ice and
    rock (+10 m/yr on the workflow test's rock for ±10–20 m/yr noise). ``v_error`` is the
    median of the pairs' own 1σ errors (not reduced by the pair count: neighbouring pairs
    share images, so their errors are not independent).
    """
    _, transform, flip = _window_transform(window)
    fields = {}
    for name in ("vx", "vy", "v_error"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels give NaN, as wanted
            med = np.nanmedian(window[name].values, axis=0)
        fields[name] = resample_to_grid(med[::-1] if flip else med, transform, window.attrs["crs"], grid,
                                        Resampling[resampling])
    speed = np.hypot(fields["vx"], fields["vy"])  # before the rotation, which keeps lengths anyway
    vx, vy = rotate_to_grid(fields["vx"], fields["vy"], window.attrs["crs"], grid)
    mid = pd.to_datetime(window["mid_date"].values)
    attrs = {"reference_product": "ITS_LIVE datacube (median vx, vy of image pairs)", "reference_url": window.attrs["url"],
             "reference_crs": window.attrs["crs"], "reference_pairs": str(window.sizes["mid_date"]),
             "reference_first_mid_date": mid.min().date().isoformat(),
             "reference_last_mid_date": mid.max().date().isoformat()}
    return ReferenceLayer(vx, vy, speed, fields["v_error"], grid, attrs)


def cube_point_series(window: xr.Dataset, points, crs_of_points: str = "EPSG:4326") -> pd.DataFrame:  # noqa: ANN001 - timeseries.Point
    """One row per point and ITS_LIVE pair: ``point, mid_date, date_start, date_end, date_dt_days,
    v, v_error, vx, vy`` (m/yr; vx/vy along the cube's map axes), from the cube cell containing
    the point. Points outside the window get no rows."""
    to_cube = Transformer.from_crs(crs_of_points, window.attrs["crs"], always_xy=True)
    x, y = window["x"].values, window["y"].values
    rows = []
    for p in points:
        px, py = to_cube.transform(p.lon, p.lat)
        ix, iy = int(np.argmin(np.abs(x - px))), int(np.argmin(np.abs(y - py)))
        half = abs(float(x[1] - x[0])) / 2 if x.size > 1 else 60.0
        if abs(x[ix] - px) > half or abs(y[iy] - py) > half:
            continue
        cell = window.isel(x=ix, y=iy)
        for k in range(window.sizes["mid_date"]):
            layer = cell.isel(mid_date=k)
            row = {"point": p.name, "mid_date": pd.Timestamp(layer["mid_date"].values).date().isoformat(),
                   "date_dt_days": float(layer["date_dt"]),
                   **{name: float(layer[name]) for name in ("v", "v_error", "vx", "vy")}}
            for name, col in (("acquisition_date_img1", "date_start"), ("acquisition_date_img2", "date_end")):
                row[col] = pd.Timestamp(layer[name].values).date().isoformat() if name in layer else ""
            rows.append(row)
    columns = ["point", "mid_date", "date_start", "date_end", "date_dt_days", "v", "v_error", "vx", "vy"]
    return pd.DataFrame(rows, columns=columns).dropna(subset=["v"]).reset_index(drop=True)


# ---------------------------------------------------------------- annual mosaics


def mosaic_urls(template: str, region: str, year: int) -> dict[str, str]:
    """URLs of one annual mosaic's vx, vy, v, v_error COGs."""
    return {name: template.format(region=region, year=int(year), variable=name) for name in VARIABLES}


def _gdal_path(url: str) -> str:
    """GDAL path of a URL or local file (``/vsicurl/`` for http(s), ``/vsis3/`` for s3)."""
    if url.startswith(("http://", "https://")):
        return f"/vsicurl/{url}"
    if url.startswith("s3://"):
        return f"/vsis3/{url[5:]}"
    return url


def read_mosaic_year(template: str, region: str, year: int, grid: Grid, resampling: str = "bilinear") -> ReferenceLayer:
    """One ITS_LIVE annual mosaic on ``grid`` (m/yr; vx/vy rotated to east/north).

    Each COG is read through GDAL's HTTP range requests for the glacier window only
    (``icetrack.fetch.window.reproject_to_grid``); a file that cannot be read is an error naming its URL.
    """
    fields, crs = {}, None
    with rasterio.Env(**gdal_options(None), AWS_NO_SIGN_REQUEST="YES"):  # a public bucket: unsigned reads
        for name, url in mosaic_urls(template, region, year).items():
            try:
                with rasterio.open(_gdal_path(url)) as src:
                    crs = src.crs.to_string()
                    units = (src.units[0] if src.units and src.units[0] else "") or src.tags(1).get("units", "")
            except rasterio.errors.RasterioIOError as error:
                raise ValueError(f"reference: ITS_LIVE mosaic {url} cannot be read "
                                 f"({str(error).splitlines()[0][:160]})") from None
            if units:  # the COGs made from the NetCDF mosaics may lose the unit: m/yr by ITS_LIVE's definition
                _check_units(units, f"ITS_LIVE mosaic {url}")
            fields[name] = reproject_to_grid(_gdal_path(url), grid, Resampling[resampling])
    vx, vy = rotate_to_grid(fields["vx"], fields["vy"], crs, grid)
    attrs = {"reference_product": f"ITS_LIVE annual mosaic v02, 120 m, {region}",
             "reference_url": template.format(region=region, year=year, variable="{vx,vy,v,v_error}"),
             "reference_crs": crs, "reference_years": str(year)}
    return ReferenceLayer(vx, vy, fields["v"], fields["v_error"], grid, attrs)


def mean_of_years(layers: dict[int, ReferenceLayer]) -> ReferenceLayer:
    """Pixel-wise mean (NaN-aware) of annual layers; ``v`` is the mean of the annual speeds."""
    def mean(name: str) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
            return np.nanmean(np.stack([getattr(layer, name) for layer in layers.values()]), axis=0).astype(np.float32)

    first = next(iter(layers.values()))
    attrs = dict(first.attrs, reference_years=",".join(str(y) for y in layers),
                 reference_product=first.attrs["reference_product"] + f", mean of {len(layers)} year(s)")
    attrs["reference_url"] = attrs["reference_url"].replace(f"_{next(iter(layers))}_", "_{year}_")
    return ReferenceLayer(mean("vx"), mean("vy"), mean("v"), mean("v_error"), first.grid, attrs)


def layer_point_series(layers: dict[int, ReferenceLayer], points) -> pd.DataFrame:  # noqa: ANN001 - timeseries.Point
    """One row per point and year: the annual mosaic's value in the grid cell containing the
    point, dated at mid-year and valid for the whole calendar year (``date_start``–``date_end``)."""
    rows = []
    for year, layer in layers.items():
        inv = ~layer.grid.transform
        for p, (x, y) in zip(points, points_xy(points, layer.grid.crs)):
            col, row = (int(np.floor(c)) for c in inv @ (x, y))
            if not (0 <= row < layer.grid.height and 0 <= col < layer.grid.width):
                continue
            rows.append({"point": p.name, "mid_date": f"{year}-07-02", "date_start": f"{year}-01-01",
                         "date_end": f"{year}-12-31", "date_dt_days": 365.0,
                         **{name: float(getattr(layer, name)[row, col]) for name in ("v", "v_error", "vx", "vy")}})
    columns = ["point", "mid_date", "date_start", "date_end", "date_dt_days", "v", "v_error", "vx", "vy"]
    return pd.DataFrame(rows, columns=columns).dropna(subset=["v"]).reset_index(drop=True)


def years_between(start: str, end: str) -> list[int]:
    """Calendar years touched by [start, end]."""
    return list(range(pd.Timestamp(start).year, pd.Timestamp(end).year + 1))


def write_reference(layer: ReferenceLayer, outputs: dict[str, str]) -> None:
    """One float32 Cloud-Optimised GeoTIFF (m/yr, NaN nodata) per variable named in ``outputs``
    (``vx``, ``vy``, ``v``, ``v_error``), tagged with what was read (URLs without their query
    strings, which may hold tokens) and the icetrack version."""
    for name, path in outputs.items():
        write_geotiff(path, getattr(layer, name), layer.grid.transform, layer.grid.crs,
                      descriptions=[f"ITS_LIVE {GEOTIFF_BANDS[name]}"], units="m/yr",
                      tags={**redact(layer.attrs), "variable": name, "icetrack_version": __version__})


def build_reference(config: dict, grid: Grid, start: str, end: str, points) -> tuple[ReferenceLayer, pd.DataFrame]:  # noqa: ANN001
    """The reference maps and the point series the ``reference:`` config block asks for.

    ``itslive_cube``: the cube of ``cube_url`` (or the catalogue's cube covering the grid
    centre), pairs centred in [start, end] with ``min_dt_days`` ≤ dt ≤ ``max_dt_days``;
    ``itslive_mosaic``: the annual mosaics of ``region`` for ``years`` (default: the years
    of [start, end]). Raises ValueError naming the field for an incomplete block.
    """
    source, resampling = config["source"], config.get("resampling", "bilinear")
    if source == "itslive_cube":
        url = config.get("cube_url") or find_cube_url(config["catalog"], *grid_centre_lonlat(grid))
        window = load_cube_window(url, grid, start, end, config.get("min_dt_days", 0), config.get("max_dt_days", 1e9))
        return cube_reference(window, grid, resampling), cube_point_series(window, points)
    if source == "itslive_mosaic":
        region = config.get("region", "")
        if not region:
            raise ValueError("reference.region = '': expected the ITS_LIVE (RGI) region of the glacier's mosaics, "
                             "e.g. RGI05A")
        years = list(config.get("years") or years_between(start, end))
        layers = {year: read_mosaic_year(config["mosaic_url"], region, year, grid, resampling) for year in years}
        return mean_of_years(layers), layer_point_series(layers, points)
    raise ValueError(f"reference.source = {source!r}: expected itslive_cube or itslive_mosaic")


def comparison_stats(ours: np.ndarray, reference: np.ndarray, glacier: np.ndarray, stable: np.ndarray) -> dict:
    """Our speed against the reference speed (m/yr) on the same cells, over the glacier and
    over stable ground: count, median and NMAD of ours − reference, RMSE, and Pearson's r."""
    out = {"units": "m/yr", "difference": "icetrack - reference"}
    for name, where in (("glacier", glacier), ("stable_ground", stable), ("all", np.ones_like(glacier, bool))):
        both = where & np.isfinite(ours) & np.isfinite(reference)
        d = (ours - reference)[both]
        n = int(both.sum())
        out[name] = {
            "points": n,
            "median_difference_m_per_yr": float(np.median(d)) if n else None,
            "nmad_difference_m_per_yr": float(nmad(d)) if n else None,
            "rmse_m_per_yr": float(np.sqrt(np.mean(d**2))) if n else None,
            "correlation": float(np.corrcoef(ours[both], reference[both])[0, 1]) if n > 2 and np.std(reference[both]) > 0
            and np.std(ours[both]) > 0 else None,
        }
    return out
