"""Checks that need more than the JSON schema, run before any job (from common.smk).

The schema checks each value on its own; these check values against each other
(chip vs search window vs grid size, date ranges), and the local files a config
names (present, readable, georeferenced, in the CRS icetrack expects). Every
problem raises :class:`~icetrack.config.load.ConfigError` with one line naming the
field, the value and what was expected.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable

from icetrack.config.load import ConfigError, effective
from icetrack.track.params import search_range_px

# Glacier ids become directory names under results/ (and the cache): a strict
# pattern means no "..", no "/", no spaces, no shell metacharacters.
GLACIER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# The demo_data rule writes the demo's outline and stable ground here: not there yet on a first run.
DEMO_DIR = "resources/demo/"
# GeoJSON is WGS 84 lon/lat by definition (RFC 7946); the old 2008 spec allowed a
# "crs" member, and these are the names that still mean WGS 84.
WGS84_NAMES = {"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "EPSG:4326",
               "urn:ogc:def:crs:EPSG::4326", "urn:ogc:def:crs:EPSG:4326", "CRS84"}


def check_all(config: dict, glaciers: dict[str, dict], selected: Iterable[str]) -> None:
    """Every cross-field and file check, for the glaciers that will run."""
    for gid in selected:
        glacier = glaciers[gid]
        where = f"glacier {gid}"
        check_glacier_id(gid)
        check_pairs(effective(config, glacier, "pairs"), where)
        check_tracking(effective(config, glacier, "tracking"), effective(config, glacier, "grid"),
                       effective(config, glacier, "pairs"), where)
        demo = config["sources"][glacier["source"]]["type"] == "demo"
        for key in ("outline", "stable_ground"):
            path = glacier.get(key)
            if path and not (demo and path.startswith(DEMO_DIR) and not Path(path).exists()):
                check_geojson_wgs84(glacier[key], f"{where}: {key}")
        if glacier.get("crs"):
            check_crs(glacier["crs"], f"{where}: crs")
        check_grid_fits_chip(glacier, effective(config, glacier, "grid"), effective(config, glacier, "tracking"), where)
        source_name = glacier["source"]
        check_source(config["sources"][source_name], f"sources.{source_name}")
        check_source_urls(config["sources"][source_name], f"sources.{source_name}",
                          effective(config, glacier, "fetch").get("allow_http", False))


def check_glacier_id(gid: str) -> None:
    """Glacier ids name folders under results/: they must not escape it."""
    if not isinstance(gid, str) or not GLACIER_ID.fullmatch(gid) or ".." in gid:
        raise ConfigError(f"glacier_id = {gid!r}: expected letters, digits, '_', '.', '-' only, starting with a "
                          "letter or digit and without '..' (it becomes a folder under results/)")


def check_pairs(pairs: dict, where: str) -> None:
    if pairs.get("max_dt_days", 90) < pairs.get("min_dt_days", 30):
        raise ConfigError(f"{where}: pairs.max_dt_days = {pairs['max_dt_days']} is below pairs.min_dt_days = "
                          f"{pairs['min_dt_days']}; expected max_dt_days ≥ min_dt_days")


def check_tracking(tracking: dict, grid: dict, pairs: dict, where: str) -> None:
    """Chip, search window and step against each other.

    Our parameters: the reference chip is ``chip_px`` wide and the search window is
    ``chip_px + 2·search_px`` (``search_px`` is a half-width), so the window can never
    be smaller than the chip. "Chip larger than the search window" therefore shows up
    as an explicit ``search_px`` too small to reach the fastest expected ice over the
    longest pair: such a search cannot find the true match and returns a wrong one.
    Kernels with their own window sizes (ampcor's reference and search windows, as
    ``tracking.<method>.reference_window_px`` / ``search_window_px``) must have a
    search window larger than the reference window.
    """
    chip, step = tracking["chip_px"], tracking["step_px"]
    if step > chip:
        raise ConfigError(f"{where}: tracking.step_px = {step} is larger than tracking.chip_px = {chip}; "
                          "expected step_px ≤ chip_px (larger steps leave pixels between chips unmeasured)")
    search = tracking.get("search_px", "auto")
    if search != "auto":
        need = search_range_px(tracking["max_speed_m_per_yr"], pairs.get("max_dt_days", 90), grid["resolution_m"],
                               1.0, 1)
        if search < need:
            raise ConfigError(
                f"{where}: tracking.search_px = {search} cannot reach the largest expected displacement: "
                f"max_speed_m_per_yr {tracking['max_speed_m_per_yr']} over max_dt_days {pairs.get('max_dt_days', 90)} "
                f"at resolution_m {grid['resolution_m']} is {need - 1} px; expected search_px ≥ {need} or 'auto'")
    block = tracking.get(tracking["method"])
    if isinstance(block, dict) and "reference_window_px" in block and "search_window_px" in block:
        ref, sw = block["reference_window_px"], block["search_window_px"]
        if sw <= ref:
            m = tracking["method"]
            raise ConfigError(f"{where}: tracking.{m}.search_window_px = {sw} is not larger than "
                              f"tracking.{m}.reference_window_px = {ref}; expected a search window larger than "
                              "the reference window")


def _extent_m(glacier: dict) -> tuple[float, float] | None:
    """Approximate (east-west, north-south) extent of the glacier's bbox/outline in metres."""
    bounds = None
    if glacier.get("bbox"):
        bounds = glacier["bbox"]
    elif glacier.get("outline"):
        try:
            from icetrack.common.grid import load_outline

            bounds = load_outline(glacier["outline"], None).bounds
        except Exception:  # noqa: BLE001 - the outline check reports unreadable files
            return None
    if not bounds:
        return None
    w, s, e, n = bounds
    lat = math.radians((s + n) / 2)
    return (e - w) * 111_320 * max(math.cos(lat), 1e-6), (n - s) * 110_574


def check_grid_fits_chip(glacier: dict, grid: dict, tracking: dict, where: str) -> None:
    """The common grid (bbox/outline + buffer) must hold at least one chip."""
    extent = _extent_m(glacier)
    if extent is None:
        return
    size_px = min(extent) + 2 * grid.get("buffer_m", 0)
    size_px /= grid["resolution_m"]
    if size_px < tracking["chip_px"]:
        raise ConfigError(f"{where}: the grid is about {size_px:.0f} px across (bbox/outline + 2 × grid.buffer_m "
                          f"{grid.get('buffer_m', 0)} at {grid['resolution_m']} m), smaller than tracking.chip_px = "
                          f"{tracking['chip_px']}; expected a larger bbox or buffer_m, or a smaller chip")


def check_readable(path: str, field: str) -> Path:
    """``path`` is an existing, readable regular file."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{field} = {path!r}: file not found (relative paths are from the working directory "
                          f"{os.getcwd()})")
    if not p.is_file():
        raise ConfigError(f"{field} = {path!r}: expected a file, found a directory or special file")
    if not os.access(p, os.R_OK):
        raise ConfigError(f"{field} = {path!r}: file is not readable (check its permissions)")
    try:
        with open(p, "rb") as fh:
            fh.read(1)
    except OSError as e:
        raise ConfigError(f"{field} = {path!r}: cannot be read ({e.strerror})") from None
    return p


def check_geojson_wgs84(path: str, field: str) -> None:
    """A readable GeoJSON file with geometries in WGS 84 longitude/latitude."""
    p = check_readable(path, field)
    try:
        data = json.loads(p.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{field} = {path!r}: not valid GeoJSON ({getattr(e, 'msg', e)}); expected a "
                          "GeoJSON file in WGS 84") from None
    if not isinstance(data, dict) or data.get("type") not in (
            "FeatureCollection", "Feature", "Polygon", "MultiPolygon", "GeometryCollection"):
        raise ConfigError(f"{field} = {path!r}: expected a GeoJSON FeatureCollection, Feature or (Multi)Polygon")
    crs = data.get("crs")
    if crs is not None:
        name = (crs.get("properties") or {}).get("name", "") if isinstance(crs, dict) else str(crs)
        if name not in WGS84_NAMES:
            raise ConfigError(f"{field} = {path!r} declares CRS {name or crs!r}; expected WGS 84 longitude/latitude "
                              "(GeoJSON, RFC 7946) — reproject it, e.g. ogr2ogr -t_srs EPSG:4326 out.geojson in.geojson")
    coords = list(_coordinates(data))
    if not coords:
        raise ConfigError(f"{field} = {path!r}: contains no geometry")
    bad = next(((x, y) for x, y in coords if not (-180 <= x <= 180 and -90 <= y <= 90)), None)
    if bad is not None:
        raise ConfigError(f"{field} = {path!r}: coordinate ({bad[0]:g}, {bad[1]:g}) is not a longitude/latitude; "
                          "expected WGS 84 degrees (the file looks projected — reproject it to EPSG:4326)")


def _coordinates(obj: Any) -> Iterable[tuple[float, float]]:
    """Every (x, y) position in a GeoJSON object."""
    if isinstance(obj, dict):
        if "coordinates" in obj:
            yield from _positions(obj["coordinates"])
        for key in ("features", "geometries"):
            for sub in obj.get(key) or []:
                yield from _coordinates(sub)
        if isinstance(obj.get("geometry"), dict):
            yield from _coordinates(obj["geometry"])


def _positions(c: Any) -> Iterable[tuple[float, float]]:
    if isinstance(c, (list, tuple)) and c and all(isinstance(v, (int, float)) for v in c):
        yield float(c[0]), float(c[1] if len(c) > 1 else 0.0)
    elif isinstance(c, (list, tuple)):
        for sub in c:
            yield from _positions(sub)


def check_crs(value: str, field: str) -> None:
    """A projected CRS in metres that pyproj understands."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_user_input(value)
    except CRSError:
        raise ConfigError(f"{field} = {value!r}: unknown CRS; expected e.g. 'EPSG:32622'") from None
    if not crs.is_projected:
        raise ConfigError(f"{field} = {value!r}: a geographic CRS; expected a projected CRS in metres, e.g. UTM")


def check_source(source: dict, field: str) -> None:
    """A source's local files (catalogue present, images readable and georeferenced) and,
    for requester-pays archives, credentials in the environment."""
    from icetrack.access.sources import resolve_source, s3_credentials_present

    kind = source["type"]
    if kind == "stac_static" and "://" not in source.get("catalog", ""):
        check_readable(source["catalog"], f"{field}.catalog")
    if kind == "stac_api" and resolve_source(source).get("access") == "s3_requester_pays" and not s3_credentials_present():
        raise ConfigError(f"{field}: access = 's3_requester_pays' (preset {source.get('preset', '-')!r}) reads a "
                          "requester-pays bucket but no AWS credentials are in the environment; expected "
                          "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to be set, or preset "
                          "'planetary_computer_landsat', which needs none")
    if kind != "local_files":
        return
    seen: dict[str, int] = {}
    for i, entry in enumerate(source["files"]):
        where = f"{field}.files[{i}]"
        check_raster(entry["path"], f"{where}.path")
        if entry.get("cloud_mask"):
            check_raster(entry["cloud_mask"], f"{where}.cloud_mask")
        key = str(Path(entry["path"]).resolve())
        if key in seen:
            raise ConfigError(f"{where}.path = {entry['path']!r}: the same file as files[{seen[key]}]; "
                              "expected each image once")
        seen[key] = i


def check_source_urls(source: dict, field: str, allow_http: bool) -> None:
    """A source's remote URLs are https (plain http only with ``fetch.allow_http``)."""
    from icetrack.access.http import check_url

    for key in ("url", "catalog"):
        if "://" in source.get(key, ""):
            check_url(source[key], allow_http, f"{field}.{key}")


def check_raster(path: str, field: str) -> None:
    """A raster GDAL can open, with a CRS and a geotransform."""
    import rasterio
    from rasterio.errors import RasterioIOError

    check_readable(path, field)
    try:
        with rasterio.open(path) as src:
            crs, transform = src.crs, src.transform
    except RasterioIOError as e:
        raise ConfigError(f"{field} = {path!r}: not a raster GDAL can read ({str(e).splitlines()[0][:120]}); "
                          "expected a GeoTIFF") from None
    if crs is None:
        raise ConfigError(f"{field} = {path!r}: has no CRS; expected a georeferenced GeoTIFF "
                          "(assign one with gdal_edit.py -a_srs EPSG:xxxx)")
    if transform.is_identity:
        raise ConfigError(f"{field} = {path!r}: has no geotransform; expected a georeferenced GeoTIFF")


def prepare(config: dict, schemas: str | Path) -> tuple[dict[str, dict], list[str]]:
    """Everything checked before any job runs, in order: the config schema (defaults
    filled in place), the glacier table, the selection, each glacier's overrides, then
    the cross-field and file checks. Returns (glaciers by id, selected ids); raises
    :class:`ConfigError` with one line on the first kind of problem found."""
    from icetrack.config.load import deep_merge, load_glacier_table, selected_glaciers, validate

    schemas = Path(schemas)
    if not isinstance(config, dict):
        raise ConfigError(f"config = {config!r}: expected a mapping of settings (see config/config.yaml)")
    validate(config, schemas / "config.schema.yaml")
    glaciers = load_glacier_table(config["glaciers_table"], schemas / "glaciers.schema.yaml", config)
    selected = selected_glaciers(config, glaciers)
    for gid in selected:  # per-glacier overrides must leave a valid config too
        validate(deep_merge(config, glaciers[gid]["overrides"]), schemas / "config.schema.yaml", root=f"glacier {gid}")
    check_all(config, glaciers, selected)
    return glaciers, selected
