"""Windowed reads of remote COGs over HTTP, against a real nginx and the fault server.

- a 20 × 20 km glacier window of a 110 × 110 km COG (25 m, 4400² uint16, 512² deflate
  tiles, overviews, glacier-like texture) costs ≤ 10 % of the file's bytes, measured from
  nginx's access log, and equals a local read of the same window;
- a glacier on the edge of two tiles is mosaicked from both, equal to the untiled scene;
- GDAL's reads survive transient 500s (GDAL_HTTP_MAX_RETRY), and a permanent failure is
  one FetchError naming the href and the status;
- plain http is refused unless ``fetch.allow_http``.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from scipy import ndimage

from faultserver import FaultServer
from icetrack.fetch.window import FetchError, fetch_date
from icetrack.common.grid import Grid
from icetrack.access.http import InsecureURLError

CRS = "EPSG:32633"
TILE_M = 110_000.0
RES = 25.0
X0, Y0 = 400_000.0, 7_100_000.0
# Loopback servers speak http: the tests opt in, as a user would for a server they trust.
FETCH = {"allow_http": True, "max_retries": 3, "retry_delay_s": 0.05, "timeout_s": 5}


def glacier_texture(n: int, seed: int) -> np.ndarray:
    """uint16 DNs like a Sentinel-2 NIR band over ice: broad shading, crevasse-scale detail, sensor noise."""
    rng = np.random.default_rng(seed)
    coarse = ndimage.zoom(ndimage.gaussian_filter(rng.standard_normal((n // 50 + 1,) * 2).astype(np.float32), 2),
                          50, order=1)[:n, :n]
    fine = ndimage.gaussian_filter(rng.standard_normal((n, n), dtype=np.float32), 1.2)
    img = 3000 + 1500 * coarse / coarse.std() + 400 * fine / fine.std() + rng.normal(0, 20, (n, n)).astype(np.float32)
    return np.clip(img, 1, 65535).astype(np.uint16)


def write_cog(path, data: np.ndarray, x0: float, y0: float, res: float, block: int = 512) -> None:
    with rasterio.open(path, "w", driver="COG", width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype,
                       crs=CRS, transform=from_origin(x0, y0, res, res), blocksize=block, compress="DEFLATE",
                       predictor=2, overview_resampling="AVERAGE", nodata=0) as dst:
        dst.write(data, 1)


@pytest.fixture(scope="module")
def big_cog(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cog")
    n = int(TILE_M / RES)
    write_cog(folder / "T33WXX_B08.tif", glacier_texture(n, seed=1), X0, Y0, RES)
    return folder / "T33WXX_B08.tif"


def glacier_grid(east_km: float, south_km: float, size_km: float = 20.0, res: float = RES) -> Grid:
    """A size_km square grid whose top-left corner is (east_km, south_km) inside the tile (not block-aligned)."""
    n = int(size_km * 1000 / res)
    return Grid(crs=CRS, x_min=X0 + east_km * 1000, y_max=Y0 - south_km * 1000, resolution_m=res, width=n, height=n)


def test_window_read_fetches_under_10_percent_of_the_cog(big_cog, nginx):
    server = nginx(big_cog.parent)
    grid = glacier_grid(27.0, 51.0)
    local = fetch_date([str(big_cog)], [""], grid, [], resampling="nearest")
    server.clear_log()
    remote = fetch_date([server.href(big_cog.name)], [""], grid, [], resampling="nearest", fetch=FETCH)
    fetched, size = server.bytes_served(big_cog.name), big_cog.stat().st_size
    print(f"\nwindow 20x20 km of a {size / 1e6:.1f} MB COG: {fetched / 1e6:.2f} MB in {len(server.log())} requests "
          f"= {100 * fetched / size:.1f} % of the file")
    assert np.isfinite(remote).all()
    np.testing.assert_array_equal(remote, local)
    assert 0 < fetched <= 0.10 * size
    assert all(line.range for line in server.log() if line.method == "GET")  # never the whole file


def test_tile_edge_glacier_is_mosaicked_from_both_tiles(tmp_path, nginx):
    """Two overlapping tiles (west, east) of one scene; the glacier straddles their edge."""
    n, res = 1200, 20.0
    scene = glacier_texture(n, seed=2)
    overlap = 100
    write_cog(tmp_path / "west.tif", scene[:, : n // 2 + overlap], X0, Y0, res)
    write_cog(tmp_path / "east.tif", scene[:, n // 2 - overlap:], X0 + (n // 2 - overlap) * res, Y0, res)
    write_cog(tmp_path / "whole.tif", scene, X0, Y0, res)
    server = nginx(tmp_path)
    grid = Grid(crs=CRS, x_min=X0 + 400 * res, y_max=Y0 - 300 * res, resolution_m=res, width=400, height=300)
    whole = fetch_date([str(tmp_path / "whole.tif")], [""], grid, [], resampling="nearest")
    west_only = fetch_date([server.href("west.tif")], [""], grid, [], resampling="nearest", fetch=FETCH)
    mosaic = fetch_date([server.href("west.tif"), server.href("east.tif")], ["", ""], grid, [], resampling="nearest",
                        fetch=FETCH)
    assert 0.4 < np.isfinite(west_only).mean() < 0.9  # one tile alone leaves the east of the glacier empty
    np.testing.assert_array_equal(mosaic, whole)
    assert {line.path for line in server.log()} == {"/west.tif", "/east.tif"}


@pytest.fixture(scope="module")
def small_cog(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    write_cog(folder / "scene.tif", glacier_texture(1024, seed=3), X0, Y0, 10.0)
    return folder / "scene.tif"


SMALL_GRID = Grid(crs=CRS, x_min=X0 + 3000, y_max=Y0 - 3000, resolution_m=10.0, width=300, height=300)


# Faults on the requests for image data (the HEAD and the first header GET pass, so that the
# fault hits a tile read), except the first row, which fails every first request.
GDAL_TRANSIENT = {
    "three 500s on the first requests": ("status", 3, {"code": 500}, ""),
    "503 on a tile read": ("status", 2, {"code": 503, "retry_after": 1}, "GET"),
    "429 on a tile read": ("status", 1, {"code": 429}, "GET"),
    "hang past the timeout": ("hang", 1, {"seconds": 3}, "GET"),
    "reset before the headers": ("reset", 2, {}, "GET"),
    "reset mid-body": ("reset", 1, {"after_bytes": 1000}, "GET"),
    "truncated body": ("truncate", 1, {}, "GET"),
    "Content-Length too large": ("lie_length", 1, {"delta": 100}, "GET"),
}


@pytest.mark.parametrize("kind, times, options, method", GDAL_TRANSIENT.values(), ids=GDAL_TRANSIENT.keys())
def test_windowed_read_survives_transient_faults(small_cog, kind, times, options, method):
    local = fetch_date([str(small_cog)], [""], SMALL_GRID, [], resampling="nearest")
    # A fresh server each time: a new port, so GDAL's per-URL block cache is cold.
    with FaultServer(small_cog.parent) as server:
        server.inject(kind, times=times, method=method, skip=1 if method else 0, **options)
        remote = fetch_date([server.href(small_cog.name)], [""], SMALL_GRID, [], resampling="nearest",
                            fetch={**FETCH, "timeout_s": 1})
        faults = [r.fault for r in server.log() if r.fault]
    assert len(faults) == times or kind == "hang"  # a hanging request is logged when it gives up
    np.testing.assert_array_equal(remote, local)


GDAL_PERMANENT = {
    "503 forever": ("status", {"code": 503}, "", "HTTP 503"),
    "404 on a tile read": ("status", {"code": 404}, "GET", "HTTP 404"),
    "resets forever": ("reset", {}, "GET", "HTTP answer"),
    "truncated forever": ("truncate", {}, "GET", "body cut short"),
}


@pytest.mark.parametrize("kind, options, method, reason", GDAL_PERMANENT.values(), ids=GDAL_PERMANENT.keys())
def test_windowed_read_that_keeps_failing_is_one_line_naming_the_href(small_cog, kind, options, method, reason):
    with FaultServer(small_cog.parent) as server:
        server.inject(kind, times=1000, method=method, skip=1 if method else 0, **options)
        href = server.href(small_cog.name) + "?token=SECRET123"
        with pytest.raises(FetchError) as caught:
            fetch_date([href], [""], SMALL_GRID, [], fetch={**FETCH, "max_retries": 1})
    message = str(caught.value)
    assert message.startswith(f"cannot read {server.href(small_cog.name)} (after 1 retries): ")
    assert reason in message and "SECRET123" not in message and "\n" not in message


def test_plain_http_needs_the_opt_in(small_cog):
    with FaultServer(small_cog.parent) as server:
        with pytest.raises(InsecureURLError, match="allow_http"):
            fetch_date([server.href(small_cog.name)], [""], SMALL_GRID, [], fetch={"allow_http": False})
        assert server.log() == []  # refused before any request
