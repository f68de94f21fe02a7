"""Network faults, injected by a real HTTP/1.1 server on 127.0.0.1 (tests/faultserver.py),
against the download cache: transient failures are retried and the file arrives intact;
lies are detected and never cached; a permanent failure is one line naming the URL and
the status, with nothing left in the cache."""

from __future__ import annotations

import logging

import pytest

from faultserver import FaultServer
from icetrack.access.download import DownloadError, download
from icetrack.access.http import InsecureURLError

CHUNK_MIB = 0.25
CHUNK = int(CHUNK_MIB * (1 << 20))
FETCH = {"allow_http": True, "max_retries": 3, "retry_delay_s": 0.01, "timeout_s": 0.5, "chunk_mib": CHUNK_MIB}
SIZE = 2_000_000


@pytest.fixture
def served(tmp_path):
    import numpy as np

    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "scene.tif").write_bytes(np.random.default_rng(0).bytes(SIZE))
    return folder


@pytest.fixture
def server(served):
    with FaultServer(served) as s:
        yield s


def cache_files(cache) -> list[str]:
    return sorted(p.name for p in cache.rglob("*") if p.is_file() and p.suffix != ".lock") if cache.exists() else []


TRANSIENT = {
    "three 500s in a row": [("status", 3, {"code": 500})],
    "502 then 504": [("status", 1, {"code": 502}), ("status", 1, {"code": 504})],
    "503 with Retry-After": [("status", 1, {"code": 503, "retry_after": 1})],
    "429 with Retry-After": [("status", 1, {"code": 429, "retry_after": 0})],
    "429 without Retry-After": [("status", 2, {"code": 429})],
    "hang past the timeout": [("hang", 1, {"seconds": 1.5})],
    "connection reset before the headers": [("reset", 2, {})],
    "connection reset mid-body": [("reset", 1, {"after_bytes": 900_000})],
    "truncated body": [("truncate", 2, {"body_bytes": 700_000})],
    "Content-Length too large": [("lie_length", 1, {"delta": 1000})],
}


@pytest.mark.parametrize("faults", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_faults_are_retried_and_the_file_arrives_intact(server, served, tmp_path, faults):
    for kind, times, options in faults:
        server.inject(kind, times=times, **options)
    path = download(server.href("scene.tif"), tmp_path / "cache", FETCH, size_bytes=SIZE)
    assert path.read_bytes() == (served / "scene.tif").read_bytes()
    assert cache_files(tmp_path / "cache") == ["scene.tif"]
    injected = sum(times for _, times, _ in faults)
    log = server.wait_for_requests(injected + 1)
    assert sum(1 for r in log if r.fault) == injected and log[-1].status in (200, 206)


def test_retry_after_is_honoured(server, tmp_path, caplog):
    server.inject("status", code=503, retry_after=1)
    with caplog.at_level(logging.WARNING, logger="icetrack.access.download"):
        download(server.href("scene.tif"), tmp_path / "cache", FETCH)
    assert "HTTP 503 Service Unavailable; retry 1/3 in 1.0 s" in caplog.text  # not the 0.01 s backoff


def test_a_truncated_body_is_resumed_not_refetched(server, tmp_path):
    server.inject("truncate", body_bytes=1_100_000)
    download(server.href("scene.tif"), tmp_path / "cache", FETCH)
    first, second = server.wait_for_requests(2)
    start = int(second.range.removeprefix("bytes=").rstrip("-"))
    assert second.status == 206 and 0 <= first.body_bytes - start < CHUNK
    assert start + second.body_bytes == SIZE


LIES = {
    "every answer truncated": ("truncate", {"body_bytes": 300_000}, None, "body truncated"),
    "Content-Length always too large": ("lie_length", {"delta": 1000}, None, "body truncated|Content-Length"),
    "Content-Length too small (caught by file:size)": ("lie_length", {"delta": -1000}, SIZE, "file:size"),
}


@pytest.mark.parametrize("kind, options, size, message", LIES.values(), ids=LIES.keys())
def test_a_lying_server_is_detected_and_nothing_is_cached(server, tmp_path, kind, options, size, message):
    server.inject(kind, times=1000, **options)
    with pytest.raises(DownloadError, match=message) as caught:
        download(server.href("scene.tif"), tmp_path / "cache", FETCH, size_bytes=size)
    assert server.href("scene.tif") in str(caught.value)
    assert cache_files(tmp_path / "cache") == []  # neither the file nor a .partial


@pytest.mark.parametrize("code, attempts", [(404, 1), (403, 1), (500, 4), (503, 4)])
def test_a_permanent_failure_is_one_line_naming_the_url_and_status(server, tmp_path, code, attempts):
    server.inject("status", times=1000, code=code)
    url = server.href("scene.tif")
    with pytest.raises(DownloadError) as caught:
        download(url + "?X-Amz-Signature=SECRET", tmp_path / "cache", FETCH)
    message = str(caught.value)
    assert url in message and f"HTTP {code}" in message and "\n" not in message
    assert "SECRET" not in message
    assert len(server.wait_for_requests(attempts)) == attempts  # 4xx are not retried
    assert cache_files(tmp_path / "cache") == []


def test_hang_that_outlasts_every_retry(server, tmp_path):
    server.inject("hang", times=1000, seconds=30)
    with pytest.raises(DownloadError, match=r"failed after 2 attempts: .*[Tt]imed out"):
        download(server.href("scene.tif"), tmp_path / "cache", {**FETCH, "max_retries": 1, "timeout_s": 0.3})
    assert cache_files(tmp_path / "cache") == []


def test_tokens_never_reach_the_log(server, tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("ICETRACK_TEST_TOKEN", "tok-SECRET")
    server.inject("status", times=2, code=500)
    with caplog.at_level(logging.INFO, logger="icetrack.access.download"):
        download(server.href("scene.tif") + "?sig=SECRET", tmp_path / "cache", {**FETCH, "token_env": "ICETRACK_TEST_TOKEN"})
    assert "retry 2/3" in caplog.text and "SECRET" not in caplog.text


def test_plain_http_is_refused_without_the_opt_in(server, tmp_path):
    with pytest.raises(InsecureURLError, match="allow_http"):
        download(server.href("scene.tif"), tmp_path / "cache", {**FETCH, "allow_http": False})
    assert server.log() == []


@pytest.mark.parametrize("source, allow_http, refused", [
    ({"type": "stac_api", "url": "http://stac.example.org/v1"}, False, True),
    ({"type": "stac_api", "url": "http://stac.example.org/v1"}, True, False),
    ({"type": "stac_api", "url": "https://earth-search.aws.element84.com/v1"}, False, False),
    ({"type": "stac_static", "catalog": "ftp://example.org/catalog.json"}, True, True),
    ({"type": "stac_static", "catalog": "resources/demo/stac/catalog.json"}, False, False),
])
def test_source_urls_are_checked_before_any_job(source, allow_http, refused):
    from icetrack.config.checks import check_source_urls
    from icetrack.config.load import ConfigError

    if not refused:
        check_source_urls(source, "sources.s", allow_http)
        return
    with pytest.raises(ConfigError) as caught:
        check_source_urls(source, "sources.s", allow_http)
    message = str(caught.value)
    assert message.startswith("sources.s.") and "example.org" in message and "\n" not in message


def test_gdal_settings_that_matter():
    from icetrack.access.http import gdal_options

    options = gdal_options({"max_retries": 4, "retry_delay_s": 0.5, "timeout_s": 30})
    assert options["GDAL_HTTP_MAX_RETRY"] == "4" and options["GDAL_HTTP_RETRY_DELAY"] == "0.5"
    assert options["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR" and options["VSI_CACHE"] == "TRUE"
    assert ".tif" in options["CPL_VSIL_CURL_ALLOWED_EXTENSIONS"] and options["GDAL_HTTP_LOW_SPEED_TIME"] == "30"
    assert "GDAL_HTTP_HEADERS" not in options  # no token configured


def test_the_log_filter_drops_query_strings():
    from icetrack.access.http import RedactURLs

    record = logging.LogRecord("rasterio._env", logging.WARNING, __file__, 1,
                               "HTTP error code: 500 - %s. Retrying", ("https://h/b.tif?X-Amz-Signature=SECRET",), None)
    assert RedactURLs().filter(record) and record.getMessage().startswith("HTTP error code: 500 - https://h/b.tif")
    assert "SECRET" not in record.getMessage()


def test_credentials_come_from_the_environment_or_netrc(server, served, tmp_path, monkeypatch):
    """A bearer token from the variable named by fetch.token_env, or ~/.netrc, reaches the
    server — through the download cache and through GDAL alike — and nothing else does."""
    import base64

    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from icetrack.fetch.window import fetch_date
    from icetrack.common.grid import Grid

    with rasterio.open(served / "img.tif", "w", driver="COG", width=64, height=64, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500_000, 7_000_000, 10, 10)) as dst:
        dst.write(np.arange(64 * 64, dtype=np.uint8).reshape(64, 64), 1)
    grid = Grid(crs="EPSG:32633", x_min=500_100, y_max=6_999_900, resolution_m=10, width=20, height=20)
    monkeypatch.setenv("ICETRACK_TEST_TOKEN", "tok-123")
    token = {**FETCH, "token_env": "ICETRACK_TEST_TOKEN"}
    download(server.href("scene.tif"), tmp_path / "cache", token)
    fetch_date([server.href("img.tif")], [""], grid, [], fetch=token)
    assert {r.authorization for r in server.wait_for_requests(2)} == {"Bearer tok-123"}

    server.clear_log()
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("machine 127.0.0.1 login alice password s3cret\n")
    (home / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(home / ".netrc"))
    download(server.href("scene.tif"), tmp_path / "cache2", FETCH)
    (served / "img2.tif").write_bytes((served / "img.tif").read_bytes())  # a new URL: GDAL's cache is cold
    fetch_date([server.href("img2.tif")], [""], grid, [], fetch=FETCH)
    basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert {r.authorization for r in server.wait_for_requests(2)} == {basic}


def test_package_defaults_match_the_schema():
    """icetrack.access.http.FETCH_DEFAULTS (for callers outside the workflow) = the schema's defaults."""
    from pathlib import Path

    import yaml

    from icetrack.access.http import FETCH_DEFAULTS

    schema = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    defaults = {k: v["default"] for k, v in schema["properties"]["fetch"]["properties"].items()}
    assert defaults == FETCH_DEFAULTS
