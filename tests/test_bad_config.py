"""Bad configurations are refused before any job runs, each with one readable line
naming the field, the value and what was expected.

Most cases call :func:`icetrack.config.checks.prepare` (what common.smk runs) directly; a
handful go through a real ``snakemake -n`` to prove the line reaches the user with no
traceback and no job started.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine

from conftest import REPO, copy_workflow, snakemake
from icetrack.config.checks import prepare
from icetrack.config.load import ConfigError

SCHEMAS = REPO / "workflow" / "schemas"
HEADER = "glacier_id\tname\tsource\tstart_date\tend_date\toutline\tbbox\tstable_ground\tcrs\toverrides"
# A real-sized glacier (~5 × 5 km) given by bbox: no file needed.
GOOD_ROW = "g1\tGood\tdemo\t2024-01-01\t2024-06-30\t\t-73.10,-50.50,-73.03,-50.45\t\t\t"
LONLAT_POLY = {"type": "Polygon", "coordinates": [[[-73.1, -50.5], [-73.0, -50.5], [-73.0, -50.4], [-73.1, -50.5]]]}
UTM_POLY = {"type": "Polygon", "coordinates": [[[600000, 4400000], [601000, 4400000], [601000, 4401000],
                                                [600000, 4400000]]]}


def base_config() -> dict:
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    cfg["glaciers_table"] = "glaciers.tsv"
    return cfg


def write_tif(path: Path, crs: str | None = "EPSG:32718") -> str:
    profile = dict(driver="GTiff", width=64, height=64, count=1, dtype="uint16")
    if crs:
        profile.update(crs=crs, transform=Affine(10, 0, 600000, 0, -10, 4400000))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((1, 64, 64), np.uint16))
    return str(path)


def geojson(path: Path, geometry: dict, **extra) -> str:
    path.write_text(json.dumps({"type": "FeatureCollection", **extra,
                                "features": [{"type": "Feature", "properties": {}, "geometry": geometry}]}))
    return str(path)


def local_source(d: Path, files: list[str]) -> dict:
    return {"type": "local_files", "files": [{"path": f, "date": f"2024-0{i + 1}-01"} for i, f in enumerate(files)]}


def with_source(cfg, d, files):
    cfg["sources"]["local"] = local_source(d, files)
    return cfg


def row(**kw) -> str:
    values = dict(zip(HEADER.split("\t"), GOOD_ROW.split("\t")))
    values.update(kw)
    return "\t".join(values[k] for k in HEADER.split("\t"))


def set_(cfg, dotted, value):
    *parents, last = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[last] = value
    return cfg


# (case id, config edit (cfg, dir) -> cfg, glacier-table rows (dir) -> [rows], expected fragments of the one line)
CASES = [
    ("wrong type chip_px", lambda c, d: set_(c, "tracking.chip_px", "big"), None,
     ["tracking.chip_px", '"big"', "integer"]),
    ("wrong type resampling list", lambda c, d: set_(c, "grid.resolution_m", [10]), None,
     ["grid.resolution_m", "number"]),
    ("wrong type boolean", lambda c, d: set_(c, "pairs.same_orbit", "yes"), None,
     ["pairs.same_orbit", '"yes"', "boolean"]),
    ("unknown tracking method", lambda c, d: set_(c, "tracking.method", "magic"), None,
     ["tracking.method", '"magic"', "fft_ncc"]),
    ("unknown filter method", lambda c, d: set_(c, "filter.method", "sharpen"), None,
     ["filter.method", '"sharpen"', "gaussian_hp"]),
    ("misspelt key", lambda c, d: {**c, "trackin": {}}, None, ["trackin", "spelling"]),
    ("chip_px zero", lambda c, d: set_(c, "tracking.chip_px", 0), None, ["tracking.chip_px", "0", "minimum"]),
    ("step_px negative", lambda c, d: set_(c, "tracking.step_px", -4), None, ["tracking.step_px", "-4"]),
    ("resolution zero", lambda c, d: set_(c, "grid.resolution_m", 0), None, ["grid.resolution_m", "0"]),
    ("cloud fraction above 1", lambda c, d: set_(c, "pairs.max_cloud_fraction", 1.5), None,
     ["pairs.max_cloud_fraction", "1.5"]),
    ("search window cannot reach", lambda c, d: set_(c, "tracking.search_px", 3), None,
     ["tracking.search_px = 3", "expected search_px ≥"]),
    ("step larger than chip", lambda c, d: set_(c, "tracking.step_px", 64), None,
     ["tracking.step_px = 64", "chip_px = 32", "expected step_px ≤ chip_px"]),
    ("max_dt below min_dt", lambda c, d: set_(c, "pairs.max_dt_days", 10), None,
     ["pairs.max_dt_days = 10", "min_dt_days = 30"]),
    ("bbox smaller than one chip", lambda c, d: set_(c, "grid.buffer_m", 0),
     lambda d: [row(bbox="-73.100,-50.500,-73.098,-50.499")], ["grid is about", "chip_px = 32"]),
    ("inverted bbox", None, lambda d: [row(bbox="-73.0,-50.4,-73.1,-50.5")], ["bbox", "min_lat must be below max_lat"]),
    ("antimeridian bbox", None, lambda d: [row(bbox="179.5,-50.5,-179.5,-50.4")], ["bbox", "antimeridian"]),
    ("bbox with three numbers", None, lambda d: [row(bbox="1,2,3")], ["bbox = '1,2,3'", "min_lon,min_lat"]),
    ("bbox out of range", None, lambda d: [row(bbox="-73,-95,-72,-50")], ["bbox", "latitudes within ±90"]),
    ("end before start", None, lambda d: [row(start_date="2024-06-30", end_date="2024-01-01")],
     ["end_date = 2024-01-01", "before start_date = 2024-06-30"]),
    ("impossible date", None, lambda d: [row(start_date="2024-13-01")], ["start_date", "2024-13-01", "date"]),
    ("missing outline file", None, lambda d: [row(outline="nowhere/outline.geojson", bbox="")],
     ["outline = 'nowhere/outline.geojson'", "file not found"]),
    ("outline is a directory", None, lambda d: [row(outline=str(d), bbox="")], ["outline", "expected a file"]),
    ("outline not GeoJSON", None, lambda d: [row(outline=_write(d / "o.geojson", "<kml>not json</kml>"))],
     ["outline", "o.geojson", "not valid GeoJSON"]),
    ("stable ground declares UTM", None,
     lambda d: [row(stable_ground=geojson(d / "s.geojson", UTM_POLY,
                                          crs={"type": "name", "properties": {"name": "EPSG:32618"}}))],
     ["stable_ground", "s.geojson", "EPSG:32618", "WGS 84"]),
    ("stable ground projected coordinates", None,
     lambda d: [row(stable_ground=geojson(d / "s.geojson", UTM_POLY))],
     ["stable_ground", "s.geojson", "600000", "not a longitude/latitude"]),
    ("geographic grid crs", None, lambda d: [row(crs="EPSG:4326")], ["crs = 'EPSG:4326'", "projected"]),
    ("unknown grid crs", None, lambda d: [row(crs="EPSG:999999")], ["crs = 'EPSG:999999'", "unknown CRS"]),
    ("unknown glacier in glaciers=", lambda c, d: {**c, "glaciers": "g1,nope"}, None,
     ["glaciers = 'g1,nope'", "unknown glacier id(s) nope", "g1"]),
    ("duplicate glacier ids", None, lambda d: [GOOD_ROW, GOOD_ROW], ["glacier_id = 'g1' is a duplicate"]),
    ("glacier id escapes results/", None, lambda d: [row(glacier_id="../evil")], ["glacier_id", "../evil", "letters, digits"]),
    ("unknown source", None, lambda d: [row(source="sentinel")], ["source = 'sentinel'", "known: demo"]),
    ("overrides not JSON", None, lambda d: [row(overrides="{chip_px: 64")], ["overrides", "not valid JSON"]),
    ("override with wrong type", None, lambda d: [row(overrides='{"tracking": {"chip_px": "x"}}')],
     ["glacier g1.tracking.chip_px", '"x"', "integer"]),
    ("missing glaciers table", lambda c, d: {**c, "glaciers_table": "none.tsv"}, None,
     ["glaciers_table = 'none.tsv'", "file not found"]),
    ("local file missing", lambda c, d: with_source(c, d, [write_tif(d / "a.tif"), str(d / "b.tif")]),
     lambda d: [row(source="local")], ["sources.local.files[1].path", "b.tif", "file not found"]),
    ("local file not a raster", lambda c, d: with_source(c, d, [write_tif(d / "a.tif"), _write(d / "b.tif", "hello")]),
     lambda d: [row(source="local")], ["sources.local.files[1].path", "b.tif", "GeoTIFF"]),
    ("local file without CRS", lambda c, d: with_source(c, d, [write_tif(d / "a.tif"), write_tif(d / "b.tif", None)]),
     lambda d: [row(source="local")], ["sources.local.files[1].path", "b.tif", "no CRS"]),
    ("local file listed twice", lambda c, d: with_source(c, d, [write_tif(d / "a.tif"), str(d / "a.tif")]),
     lambda d: [row(source="local")], ["sources.local.files[1].path", "same file as files[0]"]),
    ("local file bad date", lambda c, d: set_(with_source(c, d, [write_tif(d / "a.tif"), write_tif(d / "b.tif")]),
                                              "sources.local.files", [{"path": str(d / "a.tif"), "date": "March"},
                                                                      {"path": str(d / "b.tif"), "date": "2024-01-01"}]),
     lambda d: [row(source="local")], ["sources.local.files.0.date", '"March"', "date"]),
    ("static catalogue missing", lambda c, d: {**c, "sources": {**c["sources"], "s": {
        "type": "stac_static", "catalog": "cat/catalog.json", "band_asset": "nir"}}},
     lambda d: [row(source="s")], ["sources.s.catalog = 'cat/catalog.json'", "file not found"]),
]


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def run_case(tmp_path: Path, edit, rows) -> None:
    cfg = base_config()
    if edit:
        cfg = edit(copy.deepcopy(cfg), tmp_path)
    table = rows(tmp_path) if rows else [GOOD_ROW]
    (tmp_path / "glaciers.tsv").write_text("\n".join([HEADER, *table]) + "\n")
    prepare(cfg, SCHEMAS)


def test_good_config_passes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_case(tmp_path, None, None)
    run_case(tmp_path, lambda c, d: with_source(c, d, [write_tif(d / "a.tif"), write_tif(d / "b.tif", "EPSG:32619")]),
             lambda d: [row(source="local", outline=geojson(d / "o.geojson", LONLAT_POLY), bbox="",
                            stable_ground=geojson(d / "s.geojson", LONLAT_POLY, crs={
                                "type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}))])


@pytest.mark.parametrize("name,edit,rows,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_config_gives_one_line(name, edit, rows, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        run_case(tmp_path, edit, rows)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"


pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


def test_case_count():
    """The issue asks for at least 20 bad configurations."""
    assert len(CASES) >= 20


# A handful through the real workflow: one line on stderr, no traceback, no job.
SNAKEMAKE_CASES = [
    ("wrong type", ["--config", "glaciers_table=config/glaciers.tsv", "--configfile", "bad.yaml"],
     {"bad.yaml": "tracking:\n  method: fft_ncc\n  chip_px: big\n  step_px: 8\n  max_speed_m_per_yr: 500\n"},
     "tracking.chip_px"),
    ("unknown glacier", ["--config", "glaciers=demo,nope"], {}, "unknown glacier id(s) nope"),
    ("stable ground in UTM", [], {"config/glaciers.tsv": None}, "declares CRS 'EPSG:32618'"),
    ("chip larger than search reach", ["--configfile", "bad.yaml"],
     {"bad.yaml": "tracking:\n  method: fft_ncc\n  chip_px: 32\n  step_px: 8\n  search_px: 2\n"
                  "  max_speed_m_per_yr: 500\n"}, "tracking.search_px = 2"),
]


@pytest.mark.parametrize("name,args,files,expected", SNAKEMAKE_CASES, ids=[c[0] for c in SNAKEMAKE_CASES])
def test_snakemake_dry_run_prints_one_line(name, args, files, expected, tmp_path):
    work = copy_workflow(tmp_path)
    for rel, text in files.items():
        if text is None:  # the glacier table with a projected stable-ground file
            stable = geojson(work / "stable_utm.geojson", UTM_POLY,
                             crs={"type": "name", "properties": {"name": "EPSG:32618"}})
            text = "\n".join([HEADER, row(glacier_id="demo", stable_ground=Path(stable).name)]) + "\n"
        (work / rel).write_text(text)
    proc = snakemake(work, "-n", *args, check=False)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if "icetrack: configuration error:" in ln]
    assert len(lines) == 1 and expected in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (work / "results").exists()
