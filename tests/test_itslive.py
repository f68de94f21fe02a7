"""ITS_LIVE reference layer: a small cube (Zarr) and annual mosaics (COG) in the real ITS_LIVE
layouts, served by a real nginx on loopback and read over HTTP by the product.

Each test puts a known field in, and checks the same numbers come out on the right grid
cells, in m/yr and in the grid's CRS, and that only a small part of the data set was fetched.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
import zarr
from pyproj import Transformer
from rasterio.warp import Resampling, reproject

from conftest import REPO, copy_finished_run, planned_rules, snakemake
from icetrack.reference import itslive
from icetrack.config.load import ConfigError, validate
from icetrack.common.grid import Grid
from icetrack.common.rasters import xy_coords
from icetrack.outputs.timeseries import Point, attach_reference, read_reference
from itslive_data import CELL_M, cube_field, true_to_map_axes, write_catalog, write_cube, write_mosaics

CUBE_EPSG = 32718  # UTM 18 S (Patagonia), as the catalogue's own example cube
X0, Y0 = 450_060.0, 4_440_060.0  # centre of the cube's south-west cell, m
MOSAIC_REGION = "RGI05A"  # Greenland periphery
JAKOBSHAVN = (-49.6, 69.17)  # lon, lat


def cube_grid() -> Grid:
    """A 3 × 2.4 km, 40 m glacier grid in the cube's CRS, well inside the cube (12 × 12 km)."""
    return Grid(crs=f"EPSG:{CUBE_EPSG}", x_min=X0 + 4_000, y_max=Y0 + 8_000, resolution_m=40.0, width=75, height=60)


@pytest.fixture
def served_cube(tmp_path, nginx):
    cube = write_cube(tmp_path, CUBE_EPSG, X0, Y0)
    server = nginx(tmp_path)
    url = server.href(cube["relative"])
    far = (X0 + 300_000, Y0, X0 + 400_000, Y0 + 100_000)  # another cube, elsewhere
    here = (X0 - CELL_M / 2, Y0 - CELL_M / 2, X0 + 12_000, Y0 + 12_000)
    write_catalog(tmp_path, [(server.href("datacubes/v02/TEST/far.zarr"), CUBE_EPSG, far), (url, CUBE_EPSG, here)])
    return server, cube, url


def test_catalogue_finds_the_cube_covering_the_glacier(served_cube):
    server, cube, url = served_cube
    lon, lat = itslive.grid_centre_lonlat(cube_grid())
    assert itslive.find_cube_url(server.href("datacubes/catalog_v02.json"), lon, lat) == url
    with pytest.raises(ValueError, match="no ITS_LIVE cube covers lon 10.0000, lat 10.0000"):
        itslive.find_cube_url(server.href("datacubes/catalog_v02.json"), 10.0, 10.0)
    with pytest.raises(ValueError, match=r"reference.catalog = 'http://127.0.0.1:\d+/nope.json': cannot be read"):
        itslive.find_cube_url(server.href("nope.json"), lon, lat)


def test_cube_window_median_lands_on_the_grid_cells(served_cube):
    server, cube, url = served_cube
    grid = cube_grid()
    server.clear_log()
    window = itslive.load_cube_window(url, grid, "2020-01-01", "2020-12-31", max_dt_days=120)
    layer = itslive.cube_reference(window, grid)

    # Only the five 2020 short pairs are used, in date order.
    assert list(pd.to_datetime(window["mid_date"].values).strftime("%Y-%m-%d")) == [
        "2020-01-15", "2020-02-01", "2020-03-10", "2020-05-20", "2020-06-30"]
    np.testing.assert_allclose(window["date_dt"].values, [24, 16, 32, 48, 16])
    # Known field in, same numbers out: bilinear resampling of a linear field is exact.
    x, y = xy_coords(grid.transform, (grid.height, grid.width))
    xx, yy = np.meshgrid(x, y)
    vx_true, vy_true = cube_field(xx, yy, X0, Y0)
    np.testing.assert_allclose(layer.vx, vx_true, atol=0.01)
    np.testing.assert_allclose(layer.vy, vy_true, atol=0.01)
    np.testing.assert_allclose(layer.v, np.hypot(vx_true, vy_true), rtol=2e-3)  # hypot of interpolated vx, vy
    assert layer.vx.dtype == np.float32 and np.isfinite(layer.vx).all()
    assert layer.attrs["reference_pairs"] == "5" and layer.attrs["reference_crs"] == f"EPSG:{CUBE_EPSG}"

    # Bytes: the window's chunks only, a small part of the velocity data.
    log = server.log()
    fetched = sum(line.body_bytes for line in log if line.status in (200, 206))
    total = sum(p.stat().st_size for p in cube["path"].rglob("*") if p.is_file())
    chunk_reads = [line for line in log if "/vx/" in line.path]
    print(f"\ncube: {len(log)} requests, {fetched} of {total} bytes ({100 * fetched / total:.1f} %), "
          f"{len(chunk_reads)} of 100 vx chunks")
    assert all(line.status in (200, 206, 404) for line in log)
    assert 0 < len(chunk_reads) <= 16  # the 3 × 2.4 km window + margin spans at most 4 × 4 of the 10 × 10 chunks
    assert not [line for line in log if "/v/" in line.path]  # v is hypot(vx, vy): never fetched
    assert fetched < 0.25 * total


def test_cube_series_at_points_and_geotiffs(served_cube, tmp_path):
    server, cube, url = served_cube
    grid = cube_grid()
    window = itslive.load_cube_window(url, grid, "2020-01-01", "2020-12-31", max_dt_days=120)
    # A point inside cube cell (col 40, row 60 from the south), within the glacier window.
    cx, cy = X0 + 40 * CELL_M, Y0 + 60 * CELL_M
    lon, lat = Transformer.from_crs(CUBE_EPSG, 4326, always_xy=True).transform(cx + 20, cy - 30)
    series = itslive.cube_point_series(window, [Point("trunk", lon, lat), Point("away", 10.0, 10.0)])
    vx_true, vy_true = cube_field(cx, cy, X0, Y0)
    assert set(series["point"]) == {"trunk"} and len(series) == 5
    np.testing.assert_allclose(sorted(series["vx"] - vx_true), [-20, -10, 0, 10, 20])
    np.testing.assert_allclose(series["vy"], vy_true)
    assert (series["date_start"] < series["mid_date"]).all() and (series["mid_date"] < series["date_end"]).all()

    layer = itslive.cube_reference(window, grid)
    outputs = {name: tmp_path / f"itslive_{name}.tif" for name in ("vx", "vy", "v")}
    itslive.write_reference(layer, outputs)
    with rasterio.open(outputs["vx"]) as src:
        assert src.crs.to_epsg() == CUBE_EPSG and src.transform == grid.transform
        assert src.units == ("m/yr",) and src.tags()["reference_pairs"] == "5"
        assert src.overviews(1)  # a COG
        np.testing.assert_allclose(src.read(1), layer.vx)


def test_no_pair_in_the_dates_is_one_line(served_cube):
    server, cube, url = served_cube
    with pytest.raises(ValueError, match=r"no image pair centred within 2030-01-01–2030-12-31 with 0 ≤ date_dt ≤ 120"):
        itslive.load_cube_window(url, cube_grid(), "2030-01-01", "2030-12-31", max_dt_days=120)


def test_a_cube_in_other_units_is_refused(tmp_path, nginx):
    cube = write_cube(tmp_path, CUBE_EPSG, X0, Y0, size=20)
    group = zarr.open_group(str(cube["path"]), mode="r+", zarr_format=2)
    group["vx"].attrs["units"] = "m/d"
    zarr.consolidate_metadata(str(cube["path"]), zarr_format=2)
    server = nginx(tmp_path)
    grid = Grid(crs=f"EPSG:{CUBE_EPSG}", x_min=X0 + 500, y_max=Y0 + 1500, resolution_m=40.0, width=10, height=10)
    with pytest.raises(ValueError, match=r"'vx': units = 'm/d'; expected a velocity in m/yr"):
        itslive.load_cube_window(server.href(cube["relative"]), grid, "2020-01-01", "2020-12-31")


def test_a_missing_cube_names_its_url(tmp_path, nginx):
    server = nginx(tmp_path)
    url = server.href("datacubes/v02/TEST/ITS_LIVE_vel_EPSG32718_G0120_X0_Y0.zarr")
    with pytest.raises(ValueError, match=r"ITS_LIVE cube http://127\.0\.0\.1:\d+/datacubes/v02/TEST/"
                       r"ITS_LIVE_vel_EPSG32718_G0120_X0_Y0\.zarr cannot be opened"):
        itslive.open_cube(url)


def jakobshavn_grid() -> Grid:
    """A 3 km, 40 m grid in UTM 22 N centred on Jakobshavn Isbræ (the mosaics are in EPSG:3413)."""
    x, y = Transformer.from_crs(4326, 32622, always_xy=True).transform(*JAKOBSHAVN)
    return Grid(crs="EPSG:32622", x_min=float(np.floor(x / 40) * 40 - 1500), y_max=float(np.floor(y / 40) * 40 + 1500),
                resolution_m=40.0, width=75, height=75)


def test_annual_mosaics_rotated_into_the_grid_axes(tmp_path, nginx):
    east, north = 300.0, -400.0  # m/yr, uniform: Jakobshavn flows west-south-west, here made simple
    mosaics = write_mosaics(tmp_path, MOSAIC_REGION, {2018: (east, north), 2019: (east + 20, north)}, JAKOBSHAVN)
    server = nginx(tmp_path)
    template = server.url + "/velocity_mosaic/v2/annual/cog/ITS_LIVE_velocity_120m_{region}_{year}_v02_{variable}.tif"
    grid = jakobshavn_grid()
    server.clear_log()
    layers = {year: itslive.read_mosaic_year(template, MOSAIC_REGION, year, grid) for year in (2018, 2019)}
    mean = itslive.mean_of_years(layers)

    # Stored along the polar-stereographic axes, read back along the UTM grid's x/y axes
    # (which differ from true east/north by the UTM meridian convergence, ~1.3° here).
    xx, yy = np.meshgrid(*xy_coords(grid.transform, (grid.height, grid.width)))
    for layer, e in ((layers[2018], east), (mean, east + 10)):
        want_x, want_y = true_to_map_axes(e, north, 32622, xx, yy)
        np.testing.assert_allclose(layer.vx, want_x, atol=0.2)
        np.testing.assert_allclose(layer.vy, want_y, atol=0.2)
        np.testing.assert_allclose(layer.v, np.hypot(e, north), atol=0.2)
    # Without the rotation x would be off by tens of m/yr here (3413's axes are ~5° from UTM's).
    stored = rasterio.open(mosaics["files"][(2018, "vx")]).read(1)
    assert abs(float(np.nanmedian(stored)) - float(np.median(want_x))) > 20
    assert mean.attrs["reference_years"] == "2018,2019" and mean.attrs["reference_crs"] == "EPSG:3413"

    fetched = server.bytes_served()
    total = sum(p.stat().st_size for p in mosaics["folder"].glob("*_2018_*.tif")) * 2
    print(f"\nmosaics: {len(server.log())} requests, {fetched} of {total} bytes ({100 * fetched / total:.1f} %)")
    assert fetched < 0.25 * total

    series = itslive.layer_point_series(layers, [Point("trunk", *JAKOBSHAVN)])
    assert list(series["mid_date"]) == ["2018-07-02", "2019-07-02"]
    np.testing.assert_allclose(series["v"], [500.0, np.hypot(320, 400)], atol=0.5)


def test_missing_mosaic_year_names_its_url(tmp_path, nginx):
    write_mosaics(tmp_path, MOSAIC_REGION, {2018: (300.0, -400.0)}, JAKOBSHAVN, size=300)
    server = nginx(tmp_path)
    template = server.url + "/velocity_mosaic/v2/annual/cog/ITS_LIVE_velocity_120m_{region}_{year}_v02_{variable}.tif"
    with pytest.raises(ValueError, match=r"ITS_LIVE_velocity_120m_RGI05A_2017_v02_vx\.tif cannot be read"):
        itslive.read_mosaic_year(template, MOSAIC_REGION, 2017, jakobshavn_grid())


@pytest.mark.workflow
def test_workflow_with_an_itslive_cube_reference(demo_run, tmp_path, nginx):
    """The demo run, then a config with `reference: itslive_cube` whose catalogue and cube
    (the demo's true field at 120 m) are served by nginx: only the reference steps and the
    time series run; the maps land on the glacier grid; our speed agrees with the reference."""
    work = copy_finished_run(demo_run, tmp_path)
    grid = Grid.from_json(work / "results/demo/grid.json")
    # A cube in the grid's CRS covering the grid plus 2 km, holding the true field averaged on 120 m cells.
    x0 = float(np.floor((grid.x_min - 2000) / CELL_M) * CELL_M + CELL_M / 2)
    y0 = float(np.floor((grid.bounds[1] - 2000) / CELL_M) * CELL_M + CELL_M / 2)
    size = int(np.ceil((max(grid.width, grid.height) * grid.resolution_m + 4000) / CELL_M))
    cell = Grid(crs=grid.crs, x_min=x0 - CELL_M / 2, y_max=y0 + CELL_M * (size - 0.5), resolution_m=CELL_M,
                width=size, height=size)
    fields = []
    for name in ("truth_vx.tif", "truth_vy.tif"):
        with rasterio.open(work / "resources/demo" / name) as src:
            out = np.full((size, size), np.nan, np.float32)
            reproject(src.read(1), out, src_transform=src.transform, src_crs=src.crs, dst_transform=cell.transform,
                      dst_crs=cell.crs, dst_nodata=np.nan, resampling=Resampling.average)
            fields.append(np.nan_to_num(out, nan=0.0))  # outside the demo scene: still rock
    data = tmp_path / "its-live-data"
    epsg = int(grid.crs.split(":")[1])
    cube = write_cube(data, epsg, x0, y0, size=size, year=2024, fields=tuple(fields))
    server = nginx(data)
    write_catalog(data, [(server.href(cube["relative"]), epsg, (x0, y0, x0 + size * CELL_M, y0 + size * CELL_M))])
    (work / "reference.yaml").write_text(
        f"reference:\n  source: itslive_cube\n  catalog: {server.href('datacubes/catalog_v02.json')}\n")

    planned = planned_rules(snakemake(work, "-n", "--configfile", "reference.yaml", "--quiet", "rules"))
    n_pairs = len(pd.read_csv(work / "results/demo/pairs.csv"))
    assert planned == {"reference": 1, "figure_reference": n_pairs, "timeseries": 1, "all": 1}, planned
    snakemake(work, "--configfile", "reference.yaml")

    res = work / "results/demo"
    for name in ("vx", "vy", "v"):
        with rasterio.open(res / f"reference/itslive_{name}.tif") as src:
            assert src.crs.to_string() == grid.crs and src.transform == grid.transform
            assert (src.width, src.height) == (grid.width, grid.height) and src.units == ("m/yr",)
            assert src.tags()["reference_pairs"] == "5"
    series = pd.read_csv(res / "timeseries.csv")
    trunk = series[series["point"] == "trunk"]
    assert {"reference_v", "reference_v_error", "reference_count"} <= set(series.columns)
    assert (trunk["reference_count"] > 0).any()
    both = trunk.dropna(subset=["v", "reference_v"])
    print(f"\ntrunk: icetrack {both['v'].round(1).tolist()} vs ITS_LIVE {both['reference_v'].round(1).tolist()} m/yr")
    for pair in pd.read_csv(res / "pairs.csv", dtype=str)["pair"]:
        stats = json.loads((res / pair / "reference_comparison.json").read_text())
        g, rock = stats["glacier"], stats["stable_ground"]
        print(f"{pair}: glacier n={g['points']} median diff {g['median_difference_m_per_yr']:+.1f} m/yr, "
              f"NMAD {g['nmad_difference_m_per_yr']:.1f}, r={g['correlation']:.3f}; rock n={rock['points']} "
              f"median {rock['median_difference_m_per_yr']:+.1f}")
        assert g["points"] > 100 and g["correlation"] > 0.9
        assert (res / pair / "reference_comparison.png").stat().st_size > 10_000
    # A reference setting re-runs the reference steps only.
    (work / "reference2.yaml").write_text((work / "reference.yaml").read_text() + "  max_dt_days: 60\n")
    planned = planned_rules(snakemake(work, "-n", "--configfile", "reference2.yaml", "--quiet", "rules"))
    assert planned == {"reference": 1, "figure_reference": n_pairs, "timeseries": 1, "all": 1}, planned


def test_reference_values_sit_beside_the_pairs_they_overlap(tmp_path):
    ours = pd.DataFrame({"point": ["trunk", "trunk", "rock"], "mid_date": ["2024-01-25", "2024-03-05", "2024-01-25"],
                         "acquisition_date_img1": ["2024-01-05", "2024-02-14", "2024-01-05"],
                         "acquisition_date_img2": ["2024-02-14", "2024-03-25", "2024-02-14"],
                         "v": [220.0, 225.0, 1.0]})
    csv = tmp_path / "itslive_points.csv"
    pd.DataFrame({  # two cube pairs centred in our first pair, one in the second; a mosaic year for rock
        "point": ["trunk", "trunk", "trunk", "trunk", "rock"],
        "mid_date": ["2024-01-15", "2024-02-01", "2024-03-10", "2023-06-01", "2024-07-02"],
        "date_start": ["2024-01-03", "2024-01-24", "2024-02-23", "2023-05-20", "2024-01-01"],
        "date_end": ["2024-01-27", "2024-02-09", "2024-03-26", "2023-06-13", "2024-12-31"],
        "v": [210.0, 230.0, 250.0, 999.0, 3.0], "v_error": [10.0, 20.0, 30.0, 1.0, 5.0],
    }).to_csv(csv, index=False)
    out = attach_reference(ours, read_reference(csv, []))
    assert out["reference_count"].tolist() == [2, 1, 1]
    np.testing.assert_allclose(out["reference_v"], [220.0, 250.0, 3.0])
    np.testing.assert_allclose(out["reference_v_error"], [15.0, 30.0, 5.0])
    assert attach_reference(ours, None)["reference_count"].eq(0).all()


def test_mosaic_config_block_reads_the_glacier_years(tmp_path, nginx):
    write_mosaics(tmp_path, MOSAIC_REGION, {2018: (300.0, -400.0), 2019: (340.0, -400.0)}, JAKOBSHAVN, size=300)
    server = nginx(tmp_path)
    config = {"source": "itslive_mosaic", "region": MOSAIC_REGION, "years": [], "resampling": "bilinear",
              "mosaic_url": server.url + "/velocity_mosaic/v2/annual/cog/"
                            "ITS_LIVE_velocity_120m_{region}_{year}_v02_{variable}.tif"}
    layer, series = itslive.build_reference(config, jakobshavn_grid(), "2018-05-01", "2019-09-30",
                                            [Point("trunk", *JAKOBSHAVN)])
    assert layer.attrs["reference_years"] == "2018,2019"  # the years of the glacier's dates
    np.testing.assert_allclose(layer.v, np.hypot(320, 400), atol=0.5)
    assert series["v"].round(0).tolist() == [500.0, round(float(np.hypot(340, 400)))]
    with pytest.raises(ValueError, match="reference.region = ''"):
        itslive.build_reference({**config, "region": ""}, jakobshavn_grid(), "2018-05-01", "2019-09-30", [])


@pytest.mark.parametrize("block, message", [
    ({"source": "itslive_mosaic"}, "config.reference.region = \"\": '' does not match '^RGI[0-9]{2}A$'"),
    ({"source": "itslive_cube", "max_dt_days": 0}, "config.reference.max_dt_days = 0: 0 is less than or equal to the minimum"),
    ({"source": "its_live"}, "config.reference.source = \"its_live\": 'its_live' is not one of"),
])
def test_bad_reference_blocks_are_refused_in_one_line(block, message):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["reference"] = block
    with pytest.raises(ConfigError) as error:
        validate(config, REPO / "workflow/schemas/config.schema.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_interpolated_axis_rotation_matches_the_exact_one(monkeypatch):
    """The rotation is computed every 500 m and interpolated: on a 10 m, 8 km grid from
    EPSG:3413 to UTM 22 N, a 5000 m/yr vector comes out as with the exact per-pixel rotation."""
    x, y = Transformer.from_crs(4326, 32622, always_xy=True).transform(*JAKOBSHAVN)
    grid = Grid(crs="EPSG:32622", x_min=float(np.floor(x) - 4000), y_max=float(np.floor(y) + 4000),
                resolution_m=10.0, width=800, height=800)
    vx = np.full((800, 800), 3000.0, np.float32)
    vy = np.full((800, 800), -4000.0, np.float32)
    fast = itslive.rotate_to_grid(vx, vy, "EPSG:3413", grid)
    monkeypatch.setattr(itslive, "ROTATION_SPACING_M", 1.0)  # every pixel
    exact = itslive.rotate_to_grid(vx, vy, "EPSG:3413", grid)
    for a, b in zip(fast, exact):
        np.testing.assert_allclose(a, b, atol=1e-2)  # m/yr, for 5000 m/yr
    np.testing.assert_allclose(np.hypot(*fast), 5000.0, rtol=1e-6)
    assert abs(float(np.median(fast[0])) - 3000.0) > 100  # the axes really differ (~5°)
