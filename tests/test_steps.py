"""Each step's function on its own: query, pairs, grid, fetch, kernel params (filters: test_filters.py,
postprocess: test_postprocess.py)."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from icetrack.demo.synthetic import make_demo
from icetrack.fetch.window import fetch_date
from icetrack.common.grid import grid_for_outline, load_outline, rasterize_lonlat
from icetrack.track.params import kernel_parameters, search_range_px
from icetrack.query.pairs import select_pairs
from icetrack.query.scenes import query_scenes

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


def test_search_range_follows_speed_and_separation():
    # 365.25 m/yr over 40 days at 10 m = 4 px; ×1.2 → 4.8 → 5, + 2 margin.
    assert search_range_px(365.25, 40, 10) == 7
    p = kernel_parameters({"method": "fft_ncc", "chip_px": 32, "step_px": 8, "search_px": "auto",
                           "max_speed_m_per_yr": 365.25}, 80, 10)
    assert p["search_px"] == search_range_px(365.25, 80, 10) and p["chip_px"] == 32
    assert kernel_parameters({"method": "fft_ncc", "chip_px": 32, "step_px": 8, "search_px": 9,
                              "max_speed_m_per_yr": 1}, 80, 10)["search_px"] == 9
