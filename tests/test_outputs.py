"""Outputs people use, opened as users would: COG GeoTIFFs, the ITS_LIVE-style NetCDF, the
cube, the point time series — CRS, units, dimensions, provenance, and values traced back
to each pair's tracking results (offsets.nc)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from icetrack.common.rasters import transform_of
from icetrack.common.units import DAYS_PER_YEAR
from icetrack.common.provenance import PROVENANCE_KEYS, config_hash, provenance_record, redact
from icetrack.outputs.timeseries import Point, parse_points, read_reference

PAIR_VARS = ("vx", "vy", "v", "v_error", "vx_error", "vy_error")


def pairs_of(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "results/demo/pairs.csv", dtype=str)


@pytest.mark.workflow
def test_geotiffs_are_cloud_optimised_and_match_the_netcdf(demo_run):
    for pair in pairs_of(demo_run)["pair"]:
        d = demo_run / "results/demo" / pair
        with xr.open_dataset(d / "velocity.nc") as ds:
            for name in ("vx", "vy", "v"):
                with rasterio.open(d / f"{name}.tif") as src:
                    assert src.crs.to_epsg() == 32718 and src.dtypes == ("float32",) and np.isnan(src.nodata)
                    assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
                    assert src.profile["tiled"] and src.overviews(1), "COG needs tiles and overviews"
                    assert src.tags(1)["units"] == "m/yr" and src.units == ("m/yr",)
                    assert "m/yr" in src.descriptions[0]
                    tags = src.tags()
                    assert tags["acquisition_date_img1"] == f"{pair[:4]}-{pair[4:6]}-{pair[6:8]}"
                    assert set(PROVENANCE_KEYS) <= set(tags), set(PROVENANCE_KEYS) - set(tags)
                    assert tags["config_sha256"] == ds.attrs["config_sha256"]
                    assert src.transform.almost_equals(transform_of(ds))
                    np.testing.assert_array_equal(src.read(1), ds[name].values.astype(np.float32))


@pytest.mark.workflow
def test_netcdf_follows_its_live_layout_and_matches_tracking(demo_run):
    """vx/vy are the tracked offsets minus the stable-ground bias, scaled by pixel size / dt."""
    res = demo_run / "results/demo"
    for row in pairs_of(demo_run).itertuples():
        d = res / row.pair
        kernel = json.loads((d / "kernel.json").read_text())
        quality = json.loads((d / "quality.json").read_text())
        with xr.open_dataset(d / "velocity.nc") as ds, xr.open_dataset(d / "offsets.nc") as off:
            assert ds.attrs["Conventions"] == "CF-1.8"
            for v in PAIR_VARS:
                assert ds[v].dims == ("y", "x") and ds[v].dtype == np.float32
                assert ds[v].attrs["units"] == "m/yr" and ds[v].attrs["grid_mapping"] == "mapping"
            assert ds["vx"].attrs["standard_name"] == "land_ice_surface_x_velocity"
            assert ds["x"].attrs["units"] == "m" and ds["y"].attrs["standard_name"] == "projection_y_coordinate"
            m = ds["mapping"].attrs
            assert m["grid_mapping_name"] == "transverse_mercator" and int(m["spatial_epsg"]) == 32718
            assert rasterio.crs.CRS.from_wkt(m["spatial_ref"]).to_epsg() == 32718
            info = ds["img_pair_info"].attrs
            assert info["acquisition_date_img1"].startswith(f"{row.ref_date[:4]}-{row.ref_date[4:6]}-{row.ref_date[6:]}")
            assert info["date_dt"] == float(row.dt_days) == kernel["dt_days"]
            assert info["id_img1"] == row.ref_ids and info["id_img2"] == row.sec_ids
            assert 0 <= info["roi_valid_percentage"] <= 100
            # Provenance: version, config hash, scene ids, kernel parameters — the same in quality.json.
            assert re.fullmatch(r"[0-9a-f]{64}", ds.attrs["config_sha256"])
            assert json.loads(ds.attrs["kernel_parameters"]) == kernel
            assert ds.attrs["scene_ids_img1"] == row.ref_ids
            prov = quality["provenance"]
            assert prov["config_sha256"] == ds.attrs["config_sha256"] == config_hash(prov["config"])
            assert prov["config"]["tracking"]["chip_px"] == kernel["chip_px"]
            # Values: measured (not interpolated) points equal the tracking offsets converted.
            a, e = off["mapping"].attrs["GeoTransform"], off.attrs["image_geotransform"].split()
            px, py = float(e[1]), float(e[5])
            bx, by = quality["stable_ground"]["median_offset_px"]
            dt_yr = kernel["dt_days"] / DAYS_PER_YEAR
            measured = np.isfinite(ds["vx"].values) & (ds["interp_mask"].values == 0)
            assert measured.sum() > 100 and a
            np.testing.assert_allclose(ds["vx"].values[measured], ((off["dx"].values - bx) * px / dt_yr)[measured],
                                       rtol=1e-5, atol=1e-3)
            np.testing.assert_allclose(ds["vy"].values[measured], ((off["dy"].values - by) * py / dt_yr)[measured],
                                       rtol=1e-5, atol=1e-3)
            np.testing.assert_allclose(ds["v"].values, np.hypot(ds["vx"].values, ds["vy"].values), rtol=1e-5)
            assert ds["vx"].attrs["stable_count_mask"] == quality["stable_ground"]["points"]


def _cf_tables(tmp_path: Path) -> list[str]:
    """cfchecks arguments for offline use: the CF standard-name table bundled with the IOOS
    compliance-checker package, and empty area-type/region tables (we use neither)."""
    import compliance_checker

    names = Path(compliance_checker.__file__).parent / "data" / "cf-standard-name-table.xml"
    area, region = tmp_path / "area.xml", tmp_path / "region.xml"
    area.write_text("<?xml version='1.0'?><area_type_table><version_number>0</version_number>"
                    "<date>offline</date></area_type_table>")
    region.write_text("<?xml version='1.0'?><standardized_region_list><version_number>0</version_number>"
                      "<date>offline</date></standardized_region_list>")
    return ["-s", str(names), "-a", str(area), "-r", str(region)]


@pytest.mark.workflow
def test_cf_checker_passes_on_pair_netcdf_and_cube(demo_run, tmp_path):
    cfchecks = shutil.which("cfchecks") or str(Path(sys.executable).parent / "cfchecks")
    pair = pairs_of(demo_run)["pair"].iloc[0]
    for path in (demo_run / "results/demo" / pair / "velocity.nc", demo_run / "results/demo/cube.nc"):
        proc = subprocess.run([cfchecks, *_cf_tables(tmp_path), "-v", "1.8", str(path)], capture_output=True, text=True)
        assert "Checking against CF Version CF-1.8" in proc.stdout, proc.stdout + proc.stderr
        assert "ERRORS detected: 0" in proc.stdout and "WARNINGS given: 0" in proc.stdout, proc.stdout
        assert proc.returncode == 0


@pytest.mark.workflow
def test_cube_stacks_every_pair_along_mid_date(demo_run):
    pairs = pairs_of(demo_run)
    cube = xr.open_dataset(demo_run / "results/demo/cube.nc")  # the one line users need
    with cube:
        assert cube["v"].dims == ("mid_date", "y", "x") and cube.sizes["mid_date"] == len(pairs)
        assert (np.diff(cube["mid_date"].values) >= np.timedelta64(0)).all()
        assert cube["v"].encoding["chunksizes"][0] == len(pairs), "chunks must hold the whole time axis"
        assert cube["v"].attrs["units"] == "m/yr" and cube["date_dt"].attrs["units"] == "days"
        assert rasterio.crs.CRS.from_wkt(cube["mapping"].attrs["spatial_ref"]).to_epsg() == 32718
        assert cube.attrs["icetrack_version"] and re.fullmatch(r"[0-9a-f]{64}(,[0-9a-f]{64})*", cube.attrs["config_sha256"])
        for k, pair in enumerate(cube["pair"].values):
            with xr.open_dataset(demo_run / "results/demo" / str(pair) / "velocity.nc") as ds:
                layer = cube.isel(mid_date=k)
                np.testing.assert_array_equal(layer["vx"].values, ds["vx"].values)
                np.testing.assert_array_equal(layer["v_error"].values, ds["v_error"].values)
                assert str(layer["scene_ids_img1"].values) == ds.attrs["scene_ids_img1"]
                assert float(layer["date_dt"]) == ds["img_pair_info"].attrs["date_dt"]


@pytest.mark.workflow
def test_timeseries_at_trunk_and_rock(demo_run):
    """The trunk point moves at the true speed there (DemoGlacier: 225 m/yr); rock stays near 0."""
    series = pd.read_csv(demo_run / "results/demo/timeseries.csv")
    assert {"point", "mid_date", "v", "v_error", "vx", "vy", "date_dt_days"} <= set(series.columns)
    n_pairs = len(pairs_of(demo_run))
    assert series.groupby("point").size().to_dict() == {"trunk": n_pairs, "rock": n_pairs}
    trunk, rock = series[series["point"] == "trunk"], series[series["point"] == "rock"]
    assert trunk["v"].notna().sum() >= n_pairs - 1
    assert abs(trunk["v"].median() - 225.0) < 0.05 * 225.0, trunk["v"].tolist()
    assert rock["v"].max() < 5.0 and (rock["v_error"] > 0).all()
    with xr.open_dataset(demo_run / "results/demo/cube.nc") as cube:
        row = trunk.iloc[0]
        cell = cube.sel(x=row["x"], y=row["y"], method="nearest").isel(mid_date=0)
        assert float(cell["v"]) == pytest.approx(row["v"], rel=1e-6)
    assert (demo_run / "results/demo/timeseries.png").stat().st_size > 20_000


@pytest.mark.workflow
def test_quality_figures_and_tables(demo_run):
    res = demo_run / "results/demo"
    for pair in pairs_of(demo_run)["pair"]:
        assert (res / pair / "quality.png").stat().st_size > 20_000
    summary = pd.read_csv(res / "quality_summary.csv")
    assert len(summary) == len(pairs_of(demo_run)) and {"valid_pct", "stable_nmad_vx_m_per_yr"} <= set(summary.columns)
    assert "cloud_fraction_glacier" in (res / "report/scenes.html").read_text()


def test_redact_removes_credentials_and_signed_url_queries():
    cfg = {"source": {"catalog": "https://user:pw@example.org/stac?token=abc&sig=xyz", "api_key": "K",
                      "headers": {"Authorization": "Bearer T"}, "nested": [{"password": "p"}]},
           "tracking": {"chip_px": 32}}
    clean = redact(cfg)
    text = json.dumps(clean)
    for secret in ("abc", "xyz", "pw@", "Bearer", '"K"', '"p"'):
        assert secret not in text, secret
    assert clean["source"]["catalog"] == "https://example.org/stac" and clean["tracking"] == {"chip_px": 32}
    record = provenance_record(cfg, ["A"], ["B"], {"method": "fft_ncc", "token": "T"})
    assert "T" not in json.dumps(record["kernel_parameters"]) and record["config_sha256"] == config_hash(cfg)
    assert not any(v in json.dumps(record) for k, v in os.environ.items() if len(v) > 12 and "KEY" in k.upper())


def test_parse_points_and_errors():
    assert parse_points("trunk:-73.5:-50.3; rock:-73.6:-50.4;") == [Point("trunk", -73.5, -50.3), Point("rock", -73.6, -50.4)]
    assert parse_points("") == []
    for bad, words in (("trunk:-73.5", "name:lon:lat"), ("a:200:0", "±180"), ("a:1:2;a:1:3", "twice")):
        with pytest.raises(ValueError, match=words):
            parse_points(bad, where="points")


def test_timeseries_plot_draws_a_reference(tmp_path):
    """A reference CSV (dated) and a raster (mosaic, undated) are both read and drawn."""
    from affine import Affine

    from icetrack.outputs.figures import timeseries_plot
    from icetrack.common.rasters import write_geotiff

    points = [Point("trunk", -73.56239, -50.35816)]
    series = pd.DataFrame({"point": ["trunk"] * 2, "lon": [-73.56239] * 2, "lat": [-50.35816] * 2,
                           "mid_date": ["2024-01-25", "2024-03-05"], "acquisition_date_img1": ["2024-01-05", "2024-02-14"],
                           "acquisition_date_img2": ["2024-02-14", "2024-03-25"], "v": [220.0, 225.0], "v_error": [3.0, 4.0]})
    csv = tmp_path / "ref.csv"
    pd.DataFrame({"point": ["trunk"], "date": ["2024-02-01"], "v": [230.0], "v_error": [10.0]}).to_csv(csv, index=False)
    ref = read_reference(csv, points)
    assert ref.iloc[0]["mid_date"] == "2024-02-01" and ref.iloc[0]["v"] == 230.0
    tif = tmp_path / "ref.tif"
    write_geotiff(tif, [np.full((50, 50), 240.0), np.full((50, 50), 12.0)], Affine(120, 0, 600000, 0, -120, 4424000),
                  "EPSG:32718", units="m/yr")
    mosaic = read_reference(tif, points)
    assert mosaic.iloc[0]["v"] == pytest.approx(240.0) and mosaic.iloc[0]["v_error"] == pytest.approx(12.0)
    assert read_reference(tmp_path / "missing.csv", points) is None
    timeseries_plot(tmp_path / "a.png", series, pd.concat([ref, mosaic]), "test")
    timeseries_plot(tmp_path / "b.png", series, None, "test")
    assert (tmp_path / "a.png").stat().st_size > (tmp_path / "b.png").stat().st_size > 10_000


def test_glacier_table_rejects_malformed_points(tmp_path):
    from conftest import REPO
    from icetrack.config.load import ConfigError, load_glacier_table

    table = tmp_path / "glaciers.tsv"
    table.write_text("glacier_id\tsource\tstart_date\tend_date\tbbox\tpoints\n"
                     "g1\tdemo\t2024-01-01\t2024-02-01\t-73.6,-50.4,-73.5,-50.3\ttrunk:-73.5\n")
    with pytest.raises(ConfigError, match=r"points = \"trunk:-73.5\".*name:lon:lat"):
        load_glacier_table(table, REPO / "workflow/schemas/glaciers.schema.yaml", {"sources": {"demo": {}}})
