"""The download cache (icetrack.access.download) against a real nginx and the fault server:
resume from a partial file with HTTP Range, a killed download re-fetching at most one
chunk, size and checksum verification, cache hits, cache keys that stay in the cache
folder, and the per-process connection limit."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from faultserver import FaultServer
from icetrack.access.download import DownloadError, cache_path, download, parse_multihash

CHUNK_MIB = 0.25
CHUNK = int(CHUNK_MIB * (1 << 20))
FETCH = {"allow_http": True, "max_retries": 3, "retry_delay_s": 0.01, "timeout_s": 5, "chunk_mib": CHUNK_MIB}
SRC = Path(__file__).resolve().parents[1] / "src"


def blob(folder: Path, name: str, size: int, seed: int = 0) -> Path:
    import numpy as np

    path = folder / name
    path.write_bytes(np.random.default_rng(seed).bytes(size))
    return path


def sha256_multihash(path: Path) -> str:
    return "1220" + hashlib.sha256(path.read_bytes()).hexdigest()


def cache_files(cache: Path) -> list[str]:
    """Everything in the cache but the lock files (which hold no data)."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file() and p.suffix != ".lock")


def served_by_nginx(tmp_path: Path, nginx, size: int, seed: int = 0):  # noqa: ANN001 - the nginx fixture
    """A random ``scene.tif`` of ``size`` bytes in ``tmp_path/served``, served by nginx:
    (the file, the server, its URL)."""
    served = tmp_path / "served"
    served.mkdir()
    source = blob(served, "scene.tif", size, seed)
    server = nginx(served)
    return source, server, server.href("scene.tif")


def logged(server, n: int) -> list:
    """nginx's log once it holds ``n`` requests (it writes a line after the last byte left, so a
    fast client can be back before the line is)."""
    deadline = time.monotonic() + 10
    while len(server.log()) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.log()


def test_resumes_a_partial_file_with_a_range_request(tmp_path, nginx):
    source, server, url = served_by_nginx(tmp_path, nginx, 3_000_000)
    cache = tmp_path / "cache"
    have = 1_234_567
    final = cache_path(url, cache)
    final.parent.mkdir(parents=True)
    final.with_name(final.name + ".partial").write_bytes(source.read_bytes()[:have])  # as a killed run leaves it
    server.clear_log()
    path = download(url, cache, FETCH, size_bytes=source.stat().st_size, checksum=sha256_multihash(source))
    assert path.read_bytes() == source.read_bytes()
    [request] = logged(server, 1)
    assert (request.status, request.range, request.body_bytes) == (206, f"bytes={have}-", 3_000_000 - have)
    assert cache_files(cache) == [str(final.relative_to(cache))]  # no .partial left


def test_killed_download_resumes_and_refetches_at_most_one_chunk(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    source = blob(served, "big.tif", 8_000_000, seed=1)
    cache = tmp_path / "cache"
    with FaultServer(served, rate_bytes_per_s=4e6) as server:  # slow enough to be killed mid-body
        url = server.href("big.tif")
        partial = cache_path(url, cache).with_name("big.tif.partial")
        code = (f"import sys; sys.path.insert(0, {str(SRC)!r}); from icetrack.access.download import download; "
                f"download({url!r}, {str(cache)!r}, {FETCH!r})")
        proc = subprocess.Popen([sys.executable, "-c", code])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not partial.exists() or partial.stat().st_size < 2_000_000):
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        server.wait_for_requests(1)  # the server notices the dead client at its next write
        had = partial.stat().st_size
        assert 2_000_000 <= had < source.stat().st_size
        path = download(url, cache, FETCH)
        first, resumed = server.wait_for_requests(2)
    assert path.read_bytes() == source.read_bytes()
    assert resumed.range == f"bytes={had}-" and resumed.status == 206
    refetched = first.body_bytes - had  # sent before the kill, asked for again
    print(f"\nkilled after {first.body_bytes} bytes sent; resumed from byte {had}: {refetched} bytes re-fetched "
          f"(chunk {CHUNK})")
    assert 0 <= refetched <= CHUNK


def test_checksum_and_size_are_verified_and_a_mismatch_is_never_cached(tmp_path, nginx):
    source, server, url = served_by_nginx(tmp_path, nginx, 500_000)
    good = sha256_multihash(source)
    bad = "1220" + "00" * 32
    with pytest.raises(DownloadError, match="file:checksum") as caught:
        download(url, tmp_path / "c1", FETCH, checksum=bad)
    assert url in str(caught.value) and cache_files(tmp_path / "c1") == []
    with pytest.raises(DownloadError, match=r"got 500000 bytes but the catalogue \(file:size\) says 499999"):
        download(url, tmp_path / "c2", FETCH, size_bytes=499_999)
    assert cache_files(tmp_path / "c2") == []
    assert download(url, tmp_path / "c3", FETCH, size_bytes=500_000, checksum=good).read_bytes() == source.read_bytes()


def test_a_cached_file_is_reused_without_a_request_and_refetched_when_it_no_longer_matches(tmp_path, nginx):
    source, server, url = served_by_nginx(tmp_path, nginx, 200_000)
    served = source.parent
    download(url, tmp_path / "cache", FETCH)
    server.clear_log()
    download(url + "?signature=renewed", tmp_path / "cache", FETCH, checksum=sha256_multihash(source))
    assert server.log() == []  # a re-signed URL is the same entry
    blob(served, "scene.tif", 200_000, seed=9)  # the asset was replaced upstream
    path = download(url, tmp_path / "cache", FETCH, checksum=sha256_multihash(served / "scene.tif"))
    assert path.read_bytes() == (served / "scene.tif").read_bytes() and len(logged(server, 1)) == 1


@pytest.mark.parametrize("url", [
    "https://h/../../etc/passwd", "https://h/%2e%2e/%2e%2e/x", "https://h/a/..", "https://h/", "https://h",
    "https://h/.bashrc", "https://h/x%00y.tif", "https://h/" + "a" * 500 + ".tif", "https://h/a\\..\\..\\b.tif",
    "https://h/..%2f..%2fsecret", "https://user:pw@h/scene.tif?token=1",
])
def test_cache_keys_never_leave_the_cache_folder(tmp_path, url):
    path = cache_path(url, tmp_path)
    assert path.parent.parent == tmp_path.resolve()
    assert not path.name.startswith(".") and len(path.name) <= 120 and set(path.name) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def test_multihash_parsing():
    assert parse_multihash("1220" + "ab" * 32) == ("sha256", bytes.fromhex("ab" * 32))
    assert parse_multihash("d50110" + "cd" * 16)[0] == "md5"  # two-byte varint code
    for bad in ("zz", "1220abcd", "9999" + "00" * 2):
        with pytest.raises(ValueError, match="file:checksum"):
            parse_multihash(bad)


def test_per_process_connection_limit(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    for i in range(4):
        blob(served, f"s{i}.tif", 400_000, seed=i)
    with FaultServer(served, rate_bytes_per_s=2e6) as server:
        threads = [threading.Thread(target=download, args=(server.href(f"s{i}.tif"), tmp_path / "cache",
                                                           {**FETCH, "max_connections": 2})) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log = server.wait_for_requests(4)
    assert len(log) == 4 and len(cache_files(tmp_path / "cache")) == 4
    # Most transfers in progress at once (each takes ~0.2 s; a 20 ms slack absorbs the instant
    # between a client's last byte and its server thread's end).
    most = max(sum(r.started_s < t + 0.02 < r.ended_s for r in log) for t in (r.started_s for r in log))
    assert most == 2


def test_a_server_without_range_support(tmp_path):
    """Window reads need Range: one clear error pointing at download mode, without retries.
    The download cache copes: a resume answered with 200 restarts from byte 0."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from icetrack.fetch.window import FetchError, fetch_date
    from icetrack.common.grid import Grid

    served = tmp_path / "served"
    served.mkdir()
    with rasterio.open(served / "img.tif", "w", driver="COG", width=2048, height=2048, count=1, dtype="uint16",
                       crs="EPSG:32633", transform=from_origin(500_000, 7_000_000, 10, 10), blocksize=512,
                       compress="DEFLATE") as dst:
        dst.write(np.random.default_rng(0).integers(1, 4000, (2048, 2048), dtype=np.uint16), 1)
    grid = Grid(crs="EPSG:32633", x_min=505_000, y_max=6_995_000, resolution_m=10, width=100, height=100)
    source = blob(served, "scene.tif", 1_000_000)
    with FaultServer(served, ranges=False) as server:
        with pytest.raises(FetchError, match="does not answer HTTP Range requests — read whole files with "
                                             "fetch.mode: download"):
            fetch_date([server.href("img.tif")], [""], grid, [], fetch=FETCH)
        url, cache = server.href("scene.tif"), tmp_path / "cache"
        final = cache_path(url, cache)
        final.parent.mkdir(parents=True)
        final.with_name(final.name + ".partial").write_bytes(source.read_bytes()[:300_000])
        assert download(url, cache, FETCH).read_bytes() == source.read_bytes()
        [request] = server.wait_for_requests(1, path_suffix="/scene.tif")
    assert (request.range, request.status, request.body_bytes) == ("bytes=300000-", 200, 1_000_000)


def test_a_file_replaced_on_the_server_is_not_spliced_onto_an_old_partial(tmp_path, nginx):
    """The resume carries If-Range with the first answer's ETag: nginx then sends the new file whole."""
    import requests

    old, server, url = served_by_nginx(tmp_path, nginx, 1_000_000, seed=1)
    served, cache = old.parent, tmp_path / "cache"
    etag = requests.head(url, timeout=5).headers["ETag"]
    final = cache_path(url, cache)
    final.parent.mkdir(parents=True)
    final.with_name("scene.tif.partial").write_bytes(old.read_bytes()[:400_000])  # a killed run's
    final.with_name("scene.tif.partial.validator").write_text(etag)
    new = blob(served, "scene.tif", 1_000_000, seed=2)
    os.utime(new, (time.time() + 10, time.time() + 10))  # a new version (nginx's ETag is mtime-size)
    server.clear_log()
    assert download(url, cache, FETCH).read_bytes() == new.read_bytes()
    [request] = logged(server, 1)
    assert (request.range, request.status, request.body_bytes) == ("bytes=400000-", 200, 1_000_000)
    assert cache_files(cache) == [str(final.relative_to(cache))]
    assert not final.with_name("scene.tif.partial.validator").exists()


def test_two_processes_wanting_the_same_file_download_it_once(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    source = blob(served, "shared.tif", 2_000_000, seed=4)
    cache = tmp_path / "cache"
    with FaultServer(served, rate_bytes_per_s=4e6) as server:  # ~0.5 s each: they overlap
        url = server.href("shared.tif")
        code = (f"import sys; sys.path.insert(0, {str(SRC)!r}); from icetrack.access.download import download; "
                f"print(download({url!r}, {str(cache)!r}, {FETCH!r}))")
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
        paths = {proc.communicate(timeout=60)[0].strip() for proc in procs}
        log = server.wait_for_requests(2, timeout_s=1.0)  # give a second request, if any, time to be logged
    assert [p.returncode for p in procs] == [0, 0] and len(paths) == 1
    assert Path(paths.pop()).read_bytes() == source.read_bytes()
    assert len(log) == 1  # the second waited on the lock, then found the verified copy
