"""Each step's function on its own: query, pairs, grid, fetch, filters, kernel params, postprocess."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from conftest import shifted, textured
from icetrack import filters
from icetrack.demo import make_demo
from icetrack.fetch import fetch_date
from icetrack.grid import grid_for_outline, load_outline, rasterize_lonlat
from icetrack.kernel_params import kernel_parameters, search_range_px
from icetrack.pairs import select_pairs
from icetrack.postprocess import fill_small_holes, normalised_median_residual, offsets_to_velocity
from icetrack.query import query_scenes

DEMO_SOURCE = {"type": "demo", "band_asset": "nir", "cloud_asset": "scl", "cloud_classes": [3, 8, 9, 10]}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return make_demo(out), out


def test_query_reads_demo_catalogue_with_cloud_over_glacier(demo):
    catalog, out = demo
    outline = load_outline(str(out / "outline.geojson"), None)
    scenes = query_scenes({**DEMO_SOURCE, "catalog": str(catalog)}, outline, date(2024, 1, 1), date(2024, 12, 31))
    assert len(scenes) == 4
    cloudy = scenes.set_index("date")["cloud_fraction_glacier"]
    assert cloudy["20240325"] > 0.1  # the demo's cloud sits over the glacier
    assert (cloudy.drop("20240325") == 0).all()
    # The glacier figure differs from the tile-wide one: that is the point of measuring it.
    tile = scenes.set_index("date")["cloud_cover_tile_pct"]["20240325"] / 100
    assert cloudy["20240325"] > 2 * tile
    few = query_scenes({**DEMO_SOURCE, "catalog": str(catalog)}, outline, date(2024, 2, 1), date(2024, 3, 1))
    assert few["date"].tolist() == ["20240214"]


def test_pairs_respect_separation_cloud_and_cap():
    scenes = pd.DataFrame({
        "id": list("abcd"), "date": ["20240101", "20240120", "20240301", "20240401"], "orbit": ["1", "1", "2", "1"],
        "cloud_fraction_glacier": [0.0, 0.9, 0.1, 0.0], "glacier_observed_fraction": [1.0] * 4,
    })
    pairs = select_pairs(scenes, 30, 100, 0.5, 10)
    assert pairs["pair"].tolist() == ["20240101_20240301", "20240101_20240401", "20240301_20240401"]
    assert select_pairs(scenes, 30, 100, 0.5, 10, same_orbit=True)["pair"].tolist() == ["20240101_20240401"]
    assert len(select_pairs(scenes, 30, 100, 0.5, 1)) == 1


def test_grid_is_utm_snapped_and_masks_cover_outline(demo):
    _, out = demo
    outline = load_outline(str(out / "outline.geojson"), None)
    grid = grid_for_outline(outline, 10.0, 500.0)
    assert grid.crs == "EPSG:32718"
    assert grid.x_min % 10 == 0 and grid.y_max % 10 == 0
    mask = rasterize_lonlat(outline, grid)
    area_km2 = mask.sum() * 100 / 1e6
    assert area_km2 == pytest.approx(np.pi * 2.0 * 0.85, rel=0.02)  # the demo ellipse


def test_fetch_reprojects_window_and_masks_clouds(demo):
    catalog, out = demo
    outline = load_outline(str(out / "outline.geojson"), None)
    grid = grid_for_outline(outline, 20.0, 500.0)  # coarser than the 10 m scenes: resampled
    scenes = out / "scenes"
    clear = fetch_date([str(scenes / "DEMO_20240105_nir.tif")], [str(scenes / "DEMO_20240105_scl.tif")], grid, [9])
    cloudy = fetch_date([str(scenes / "DEMO_20240325_nir.tif")], [str(scenes / "DEMO_20240325_scl.tif")], grid, [9])
    assert clear.shape == (grid.height, grid.width)
    assert np.isfinite(clear).mean() > 0.99
    assert 0.02 < np.isnan(cloudy).mean() < 0.5


@pytest.mark.parametrize("method", sorted(filters.FILTERS))
def test_filters_keep_nan_and_shape(method):
    img = textured((96, 96)) * 100 + 1000
    img[40:50, 40:50] = np.nan
    out = filters.apply_filter(img, method)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.isnan(out[40:50, 40:50]).all()
    assert np.isfinite(out[:30]).all()


def test_unknown_filter_is_named():
    with pytest.raises(ValueError, match="filter.method 'sobel' is unknown"):
        filters.apply_filter(np.zeros((8, 8)), "sobel")


def test_search_range_follows_speed_and_separation():
    # 365.25 m/yr over 40 days at 10 m = 4 px; ×1.2 → 4.8 → 5, + 2 margin.
    assert search_range_px(365.25, 40, 10) == 7
    p = kernel_parameters({"method": "fft_ncc", "chip_px": 32, "step_px": 8, "search_px": "auto",
                           "max_speed_m_per_yr": 365.25}, 80, 10)
    assert p["search_px"] == search_range_px(365.25, 80, 10) and p["chip_px"] == 32
    assert kernel_parameters({"method": "fft_ncc", "chip_px": 32, "step_px": 8, "search_px": 9,
                              "max_speed_m_per_yr": 1}, 80, 10)["search_px"] == 9


POST = {"min_correlation": 0.2, "min_snr": 2.0, "median_test": {"radius": 1, "threshold": 3.0, "eps_px": 0.2},
        "max_speed_m_per_yr": 1000, "min_clump_points": 6, "min_stable_points": 20, "fill_max_hole_points": 9}


def test_postprocess_removes_outliers_bias_and_fills_small_holes():
    rng = np.random.default_rng(0)
    shape = (40, 40)
    glacier = np.zeros(shape, bool)
    glacier[10:30, 10:30] = True
    stable = ~glacier
    dx = np.where(glacier, 2.0, 0.0) + 0.3 + 0.02 * rng.standard_normal(shape)  # 0.3 px co-registration bias
    dy = np.zeros(shape) + 0.02 * rng.standard_normal(shape)
    dx[15, 15] = 9.0  # an outlier
    dx[20:22, 20:22] = np.nan  # a small hole on the glacier
    dx[0:12, 30:40] = np.nan  # a large gap stays empty
    ones = np.ones(shape)
    vel = offsets_to_velocity(dx, dy, 0.9 * ones, 10 * ones, 0.05 * ones, 0.05 * ones, (10.0, -10.0), 36.525,
                              glacier, stable, POST)
    assert np.isfinite(vel.vx[15, 15]) and vel.interpolated[15, 15]  # rejected, then filled as a 1-point hole
    assert vel.stats["rejected_fraction"]["median_test"] > 0
    assert vel.stats["stable_ground"]["median_offset_px"][0] == pytest.approx(0.3, abs=0.01)
    assert np.nanmedian(vel.vx[stable]) == pytest.approx(0.0, abs=0.2)
    assert np.nanmedian(vel.vx[glacier]) == pytest.approx(200.0, abs=1.0)  # 2 px × 10 m / 0.1 yr
    assert vel.interpolated[20:22, 20:22].all()
    assert np.isnan(vel.vx[2:10, 32:40]).all()
    assert np.isfinite(vel.vx_error[glacier]).all() and (vel.vx_error[glacier] > 0).all()


def test_median_test_flags_a_single_outlier():
    u = np.ones((9, 9))
    u[4, 4] = 5.0
    r = normalised_median_residual(u, eps=0.1)
    assert r[4, 4] > 10 and np.nanmax(np.delete(r.ravel(), 40)) < 1


def test_fill_small_holes_never_fills_large_or_outside():
    f = np.ones((20, 20))
    f[5:7, 5:7] = np.nan
    f[10:18, 10:18] = np.nan
    allowed = np.ones_like(f, bool)
    out, filled = fill_small_holes(f, 9, allowed)
    assert filled[5:7, 5:7].all() and np.isnan(out[10:18, 10:18]).all()
    out2, filled2 = fill_small_holes(f, 9, np.zeros_like(allowed))
    assert not filled2.any()
