"""The query step against a real STAC API on loopback (rustac) with COG assets served by
a real nginx: paging, retries on 429/5xx, cloud over the glacier from SCL classes and
from QA_PIXEL bit flags, Planetary Computer SAS signing and USGS requester-pays S3."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import box

from icetrack.config.checks import check_source
from icetrack.config.load import ConfigError
from icetrack.common.grid import reproject_geometry
from icetrack.query.scenes import QueryError, query_scenes
from stac_items import earth_search_s2_item, planetary_computer_landsat_item, usgs_landsat_c2l1_item, write_cog
from stac_server import RecordingProxy

CRS, EPSG = "EPSG:32718", 32718
X0, Y0 = 600_000.0, 4_424_000.0  # NW corner of every test scene (UTM 18S)
START, END = date(2024, 1, 1), date(2024, 6, 30)


def when(month: int, day: int) -> datetime:
    return datetime(2024, month, day, 14, 37, 51, tzinfo=timezone.utc)


def glacier_outline(res_m: float, rows: tuple[int, int], cols: tuple[int, int]):
    """The glacier: pixel rows/cols [start, stop) of a ``res_m`` grid at (X0, Y0), as WGS 84."""
    utm = box(X0 + cols[0] * res_m, Y0 - rows[1] * res_m, X0 + cols[1] * res_m, Y0 - rows[0] * res_m)
    return reproject_geometry(utm, CRS, "EPSG:4326")


# ---------------------------------------------------------------- Sentinel-2, Earth Search layout
SCL_RES, SCL_SIZE = 20.0, 1024
GLACIER_ROWS, GLACIER_COLS = (300, 348), (300, 380)  # 48 × 80 px at 20 m, inside one 256² block


def s2_scenes(root: Path) -> dict[str, Path]:
    """Shared assets: a 10 m NIR band, a clear SCL and one with cloud on the top quarter of the glacier."""
    scl_t = Affine(SCL_RES, 0, X0, 0, -SCL_RES, Y0)
    clear = np.full((SCL_SIZE, SCL_SIZE), 5, np.uint8)  # 5 = not vegetated (rock)
    clear[slice(*GLACIER_ROWS), slice(*GLACIER_COLS)] = 11  # snow/ice: the glacier, never cloud
    clear[600:1000, 100:900] = 8  # a big cloud far from the glacier: tile cloudy, glacier clear
    cloudy = clear.copy()
    cloudy[300:312, slice(*GLACIER_COLS)] = 9  # 12 of 48 glacier rows: 25 % of the glacier
    nir = np.full((2 * SCL_SIZE, 2 * SCL_SIZE), 3000, np.uint16)
    return {
        # uncompressed, so that reading the whole file would show in the byte count
        "clear": write_cog(root / "s2/SCL_clear.tif", clear, scl_t, CRS, 0, compress="none"),
        "cloudy": write_cog(root / "s2/SCL_cloudy.tif", cloudy, scl_t, CRS, 0, compress="none"),
        "nir": write_cog(root / "s2/B08.tif", nir, Affine(10, 0, X0, 0, -10, Y0), CRS, 0),
    }


def s2_items(base_url: str, files: dict[str, Path], root: Path) -> tuple[list[dict], dict[str, float]]:
    """Seven matching items (four with glacier cloud), plus three that must not match:
    elsewhere, outside the dates, another collection. Returns (items, expected glacier cloud)."""
    url = lambda p: f"{base_url}/{p.relative_to(root).as_posix()}"  # noqa: E731
    scl_t = Affine(SCL_RES, 0, X0, 0, -SCL_RES, Y0)
    nir = (url(files["nir"]), Affine(10, 0, X0, 0, -10, Y0), (2 * SCL_SIZE, 2 * SCL_SIZE))
    items, expected = [], {}
    for k in range(7):
        kind = "cloudy" if k % 2 == 0 else "clear"
        t = when(1 + k // 2, 5 + 10 * (k % 2))
        sid = f"S2A_T18FXK_{t:%Y%m%dT%H%M%S}_L2A"
        items.append(earth_search_s2_item(sid, t, epsg=EPSG, nir=nir, scl=(url(files[kind]), scl_t, (SCL_SIZE, SCL_SIZE)),
                                          cloud_cover=40.0 + k, orbit=96 + (k % 2)))
        expected[sid] = 0.25 if kind == "cloudy" else 0.0
    far = Affine(10, 0, X0 + 300_000, 0, -10, Y0)  # 300 km east: does not meet the glacier
    items.append(earth_search_s2_item("S2A_T19FXX_20240210T143751_L2A", when(2, 10), epsg=EPSG,
                                      nir=(nir[0], far, nir[2]), scl=(url(files["clear"]), scl_t, (SCL_SIZE, SCL_SIZE)),
                                      cloud_cover=1.0))
    late = when(8, 1)
    items.append(earth_search_s2_item(f"S2A_T18FXK_{late:%Y%m%dT%H%M%S}_L2A", late, epsg=EPSG, nir=nir,
                                      scl=(url(files["clear"]), scl_t, (SCL_SIZE, SCL_SIZE)), cloud_cover=1.0))
    items.append(earth_search_s2_item("S2A_18FXK_20240301_0_L2A", when(3, 1), epsg=EPSG, nir=nir,
                                      scl=(url(files["clear"]), scl_t, (SCL_SIZE, SCL_SIZE)), cloud_cover=1.0,
                                      collection="sentinel-2-l2a"))
    broken = earth_search_s2_item("S2A_T18FXK_20240320T143751_L2A", when(3, 20), epsg=EPSG, nir=nir,
                                  scl=(url(files["clear"]), scl_t, (SCL_SIZE, SCL_SIZE)), cloud_cover=1.0)
    broken["assets"] = {"coastal": broken["assets"]["nir"]}  # published without its bands (earth-search#36)
    items.append(broken)
    return items, expected


def s2_archive(tmp_path, nginx, stac_api):  # noqa: ANN001 - fixtures
    """The Sentinel-2 test archive: COGs served by nginx, items by a loopback STAC API.
    Returns (files, web server, API, {scene id: expected glacier cloud}, glacier outline)."""
    files = s2_scenes(tmp_path)
    web = nginx(tmp_path)
    items, expected = s2_items(web.url, files, tmp_path)
    return files, web, stac_api(items), expected, glacier_outline(SCL_RES, GLACIER_ROWS, GLACIER_COLS)


def test_earth_search_s2_paged_search_and_cloud_over_glacier(tmp_path, nginx, stac_api):
    files, web, api, expected, outline = s2_archive(tmp_path, nginx, stac_api)
    web.clear_log()

    source = {"type": "stac_api", "preset": "earth_search_s2", "url": api.url, "page_size": 2}
    scenes = query_scenes(source, outline, START, END)

    assert sorted(scenes["id"]) == sorted(expected)  # not elsewhere, not late, not the other collection
    got = dict(zip(scenes["id"], scenes["cloud_fraction_glacier"]))
    for sid, frac in expected.items():
        assert got[sid] == pytest.approx(frac, abs=0.01), sid
    assert (scenes["cloud_cover_tile_pct"] >= 40).all()  # the tile figure is far from the glacier's
    assert (scenes["glacier_observed_fraction"] > 0.99).all()
    assert set(scenes["orbit"]) == {"96", "97"} and set(scenes["tile"]) == {"MGRS-18FXK"}
    assert set(scenes["crs"]) == {"EPSG:32718"}
    assert (scenes["scale"] == 0.0001).all() and (scenes["offset"] == -0.1).all()
    assert all(h.endswith("B08.tif") for h in scenes["href"])

    # Paging: 8 matches (one without its bands, skipped) at 2 per page = 4 POST searches, each
    # keeping the glacier's geometry.
    searches = api.proxy.searches()
    print(f"{len(searches)} POST searches for {len(scenes)} scenes at page_size 2")
    assert len(searches) == 4
    assert all(s.json().get("intersects") and s.json().get("collections") == ["sentinel-2-c1-l2a"] for s in searches)

    # Only the glacier window of the cloud band is read: ranged requests, a small share of the file.
    log = [line for line in web.log() if line.path.endswith(".tif")]
    assert log and all(line.path.startswith("/s2/SCL_") for line in log)
    assert all(line.status == 206 for line in log if line.method == "GET"), log
    read = sum(line.body_bytes for line in log)
    size = files["clear"].stat().st_size + files["cloudy"].stat().st_size
    print(f"SCL bytes read over HTTP for {len(scenes)} scenes: {read} of {size} in the two files")
    assert read < 0.25 * size


def test_post_search_is_retried_on_503_and_429(tmp_path, nginx, stac_api):
    files, web, api, expected, outline = s2_archive(tmp_path, nginx, stac_api)
    source = {"type": "stac_api", "preset": "earth_search_s2", "url": api.url, "page_size": 4,
              "retry_backoff_s": 0.01}

    api.proxy.fail_next(2, 503)
    assert len(query_scenes(source, outline, START, END)) == len(expected)
    statuses = [s.status for s in api.proxy.searches()]
    assert statuses == [503, 503, 200, 200], statuses  # first page tried 3 times, then page 2 (8 items)

    api.proxy.requests.clear()
    api.proxy.fail_next(1, 429)
    assert len(query_scenes(source, outline, START, END)) == len(expected)
    assert [s.status for s in api.proxy.searches()] == [429, 200, 200]

    api.proxy.fail_next(10, 503)  # more failures than retries: the query fails, naming the API and the status
    with pytest.raises(QueryError, match=r"source url = 'http://127\.0\.0\.1:\d+'.*too many 503 error responses"):
        query_scenes({**source, "max_retries": 2}, outline, START, END)
    api.proxy.fail_next(0)
    with pytest.raises(QueryError, match="Connection refused"):
        query_scenes({**source, "url": "http://127.0.0.1:9", "max_retries": 0}, outline, START, END)
    with pytest.raises(KeyError, match="no asset 'B08' \\(source.band_asset\\)"):  # a wrong band name is no archive gap
        query_scenes({**source, "band_asset": "B08"}, outline, START, END)


# ---------------------------------------------------------------- Landsat: QA_PIXEL bit flags
QA_RES = 30.0
QA_ROWS, QA_COLS = (100, 140), (100, 140)  # 40 × 40 px glacier
CLEAR, SNOW = 21824, (1 << 5) | (1 << 6) | (1 << 8)  # clear land; snow (bit 5): the glacier, never cloud
CLOUD, DILATED, FILL = (1 << 3) | (3 << 8), 1 << 1, 1


def landsat_assets(root: Path, folder: str, stem: str, band: str) -> dict[str, Path]:
    """A band and a QA_PIXEL: over the glacier, a fill strip (¼ of the columns), cloud bit on
    10 rows, dilated-cloud bit on 5 rows, snow elsewhere → observed 0.75, cloudy 450/1200."""
    qa = np.full((256, 256), CLEAR, np.uint16)
    r0, c0 = QA_ROWS[0], QA_COLS[0]
    qa[slice(*QA_ROWS), slice(*QA_COLS)] = SNOW
    qa[r0 : r0 + 10, c0 + 10 : QA_COLS[1]] = CLOUD
    qa[r0 + 10 : r0 + 15, c0 + 10 : QA_COLS[1]] = DILATED
    qa[slice(*QA_ROWS), c0 : c0 + 10] = FILL
    t = Affine(QA_RES, 0, X0, 0, -QA_RES, Y0)
    image = np.full((256, 256), 9000, np.uint16)
    return {"qa": write_cog(root / folder / f"{stem}_QA_PIXEL.TIF", qa, t, CRS, 1),
            "band": write_cog(root / folder / f"{stem}_{band}.TIF", image, t, CRS, 0)}


def test_planetary_computer_landsat_qa_bits_and_sas_signing(tmp_path, nginx, stac_api):
    stem = "LC08_L2SP_232094_20240105_20240115_02_T1"
    folder = f"landsat-c2/level-2/standard/oli-tirs/2024/232/094/{stem}"
    files = landsat_assets(tmp_path, folder, stem, "B4")
    token_file = tmp_path / "api/sas/v1/token/landsat-c2-l2"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(json.dumps({"msft:expiry": "2099-01-01T00:00:00Z", "token": "st=2024&se=2099&sp=rl&sig=TESTSIG"}))
    web = nginx(tmp_path)
    with RecordingProxy(web.url) as blob:  # stands where the Azure blob and SAS endpoints are
        href = lambda p: f"{blob.url}/{p.relative_to(tmp_path).as_posix()}"  # noqa: E731
        t = Affine(QA_RES, 0, X0, 0, -QA_RES, Y0)
        item = lambda sid, day, platform: planetary_computer_landsat_item(  # noqa: E731
            sid, day, epsg=EPSG, path=232, row=94, red=(href(files["band"]), t, (256, 256)),
            qa=(href(files["qa"]), t, (256, 256)), cloud_cover=12.0, platform=platform)
        api = stac_api([item(stem, when(1, 5), "landsat-8"),
                        item("LE07_L2SP_232094_20240113_20240208_02_T1", when(1, 13), "landsat-7")])
        source = {"type": "stac_api", "preset": "planetary_computer_landsat", "url": api.url,
                  "sas_url": f"{blob.url}/api/sas/v1/token"}
        scenes = query_scenes(source, glacier_outline(QA_RES, QA_ROWS, QA_COLS), START, END)

        assert list(scenes["id"]) == [stem]  # Landsat 7 left out by the preset's platforms
        row = scenes.iloc[0]
        assert row["glacier_observed_fraction"] == pytest.approx(0.75, abs=0.01)  # fill bit: not observed
        assert row["cloud_fraction_glacier"] == pytest.approx(450 / 1200, abs=0.01)  # snow bit never counted
        assert row["orbit"] == "232" and row["tile"] == "232/094"
        assert row["scale"] == 2.75e-05 and row["offset"] == -0.2
        assert "sig=" not in row["href"] and "sig=" not in row["cloud_href"]  # tokens expire: never stored
        reads = [r for r in blob.requests if r.path.split("?")[0].endswith("_QA_PIXEL.TIF")]
        assert reads and all("sig=TESTSIG" in r.path for r in reads)
        assert [r.path for r in blob.requests if r.path.startswith("/api/sas")] == ["/api/sas/v1/token/landsat-c2-l2"]


def test_usgs_landsat_requester_pays_reads_s3_alternate_with_payer_header(tmp_path, nginx, stac_api, monkeypatch):
    stem = "LC08_L1TP_232094_20240105_20240115_02_T1"
    key = f"collection02/level-1/standard/oli-tirs/2024/232/094/{stem}"
    landsat_assets(tmp_path, f"usgs-landsat/{key}", stem, "B8")
    web = nginx(tmp_path)
    with RecordingProxy(web.url) as s3:  # an S3 endpoint, path-style: /usgs-landsat/<key>
        monkeypatch.setenv("AWS_S3_ENDPOINT", s3.url.replace("http://", ""))
        monkeypatch.setenv("AWS_HTTPS", "NO")
        monkeypatch.setenv("AWS_VIRTUAL_HOSTING", "FALSE")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAICETRACKTEST")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
        t = Affine(QA_RES, 0, X0, 0, -QA_RES, Y0)
        landsatlook = "https://landsatlook.usgs.gov/data/" + key
        item = usgs_landsat_c2l1_item(
            stem, when(1, 5), epsg=EPSG, path=232, row=94,
            pan=(f"{landsatlook}/{stem}_B8.TIF", f"s3://usgs-landsat/{key}/{stem}_B8.TIF", t, (256, 256)),
            qa=(f"{landsatlook}/{stem}_QA_PIXEL.TIF", f"s3://usgs-landsat/{key}/{stem}_QA_PIXEL.TIF", t, (256, 256)),
            cloud_cover=12.0)
        api = stac_api([item])
        source = {"type": "stac_api", "preset": "usgs_landsat_c2l1", "url": api.url}
        check_source(source, "sources.landsat")  # credentials are in the environment: accepted
        scenes = query_scenes(source, glacier_outline(QA_RES, QA_ROWS, QA_COLS), START, END)

        row = scenes.iloc[0]
        assert row["href"].startswith("s3://usgs-landsat/collection02/") and row["cloud_href"].endswith("_QA_PIXEL.TIF")
        assert row["cloud_fraction_glacier"] == pytest.approx(450 / 1200, abs=0.01)
        gets = [r for r in s3.requests if r.method == "GET"]
        assert gets and all(r.path.startswith(f"/usgs-landsat/{key}/") for r in gets)
        assert all(r.headers.get("x-amz-request-payer") == "requester" for r in gets)
        assert all(r.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 Credential=AKIAICETRACKTEST/")
                   for r in gets)


def test_requester_pays_without_credentials_is_refused_naming_the_source(tmp_path, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=r"sources\.landsat: access = 's3_requester_pays'.*AWS_ACCESS_KEY_ID"):
        check_source({"type": "stac_api", "preset": "usgs_landsat_c2l1"}, "sources.landsat")
    check_source({"type": "stac_api", "preset": "planetary_computer_landsat"}, "sources.pc")  # needs none


def test_cloud_band_that_misses_the_glacier_counts_as_not_observed(tmp_path):
    from icetrack.query.scenes import cloud_over_glacier

    band = write_cog(tmp_path / "scl.tif", np.full((64, 64), 9, np.uint8), Affine(20, 0, X0, 0, -20, Y0), CRS, 0)
    far = glacier_outline(20.0, (0, 10), (500, 520))  # 10 km east of the raster's data
    assert cloud_over_glacier(str(band), far, [9]) == (1.0, 0.0)
    assert cloud_over_glacier(str(band), glacier_outline(20.0, (10, 20), (10, 20)), [9]) == (1.0, 1.0)


def test_gdal_options_per_access(monkeypatch):
    from icetrack.access.sources import PRESETS, source_gdal_options

    monkeypatch.delenv("AWS_REGION", raising=False)
    usgs = source_gdal_options(PRESETS["usgs_landsat_c2l1"])
    assert usgs["AWS_REQUEST_PAYER"] == "requester" and usgs["AWS_REGION"] == "us-west-2"
    assert not any(k.startswith("AWS_") for k in source_gdal_options(PRESETS["earth_search_s2"]))
    assert int(usgs["GDAL_HTTP_MAX_RETRY"]) > 0  # GDAL's own default is no retry
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert "AWS_REGION" not in source_gdal_options(PRESETS["usgs_landsat_c2l1"])  # the environment's region is used
