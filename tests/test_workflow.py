"""The whole workflow on the embedded demo: accuracy against the true field, and re-runs."""

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from conftest import copy_finished_run, planned_rules, snakemake
from icetrack.bench.evaluate import sample_truth

pytestmark = pytest.mark.workflow


def chip_footprint_clear(ds: xr.Dataset, scene_path, chip_px: int, step_px: int) -> np.ndarray:
    """Output points whose whole tracking chip is cloud-free (finite) in a fetched scene.

    A point's value is measured over its chip, so "cloud-free" is judged over the chip.
    """
    with rasterio.open(scene_path) as src:
        finite = np.isfinite(src.read(1))
    from icetrack.track.api import _box_mean

    frac = _box_mean(finite, chip_px)[::step_px, ::step_px]
    return frac[: ds.sizes["y"], : ds.sizes["x"]] >= 1.0


def test_demo_outputs_exist_with_units_and_crs(demo_run):
    pairs = pd.read_csv(demo_run / "results/demo/pairs.csv", dtype=str)
    scenes = pd.read_csv(demo_run / "results/demo/scenes.csv", dtype=str)
    assert len(scenes) >= 3 and len(pairs) >= 3
    assert {"id", "datetime", "cloud_fraction_glacier", "href"} <= set(scenes.columns)
    for pair in pairs["pair"]:
        d = demo_run / "results/demo" / pair
        for name in ("vx", "vy", "v"):
            with rasterio.open(d / f"{name}.tif") as src:
                assert src.crs.to_epsg() == 32718 and src.dtypes[0] == "float32"
                assert src.tags(1)["units"] == "m/yr"
        with xr.open_dataset(d / "velocity.nc") as ds:
            for var in ("vx", "vy", "v", "v_error", "chip_correlation", "snr", "interp_mask"):
                assert var in ds and ds[var].attrs["grid_mapping"] == "mapping"
            assert ds["v"].attrs["units"] == "m/yr"
            assert ds.attrs["Conventions"] == "CF-1.8"
        assert (d / "speed.png").stat().st_size > 10_000
        json.loads((d / "quality.json").read_text())


def test_demo_accuracy_against_true_field(demo_run):
    """Median |speed error| ≤ 3 % of the maximum speed and ≥ 90 % valid, over ice
    points whose chips are cloud-free in both scenes."""
    res = demo_run / "results/demo"
    truth_vx, truth_vy = demo_run / "resources/demo/truth_vx.tif", demo_run / "resources/demo/truth_vy.tif"
    for pair in pd.read_csv(res / "pairs.csv", dtype=str)["pair"]:
        kernel = json.loads((res / pair / "kernel.json").read_text())
        with xr.open_dataset(res / pair / "velocity.nc") as ds:
            true_speed = np.hypot(sample_truth(str(truth_vx), ds), sample_truth(str(truth_vy), ds))
            v_max = float(np.nanmax(true_speed))
            ref, sec = pair.split("_")
            clear = (chip_footprint_clear(ds, res / "scenes" / f"{ref}.tif", kernel["chip_px"], kernel["step_px"])
                     & chip_footprint_clear(ds, res / "scenes" / f"{sec}.tif", kernel["chip_px"], kernel["step_px"]))
            ice = true_speed > 0.02 * v_max
            region = ice & clear
            v = ds["v"].values
            valid = region & np.isfinite(v)
            median_err = float(np.median(np.abs(v[valid] - true_speed[valid])))
            valid_share = valid.sum() / region.sum()
        print(f"{pair}: {region.sum()} ice points, median |dv| {median_err:.2f} m/yr "
              f"({100 * median_err / v_max:.2f} % of {v_max:.0f}), valid {100 * valid_share:.1f} %")
        assert region.sum() > 100
        assert median_err <= 0.03 * v_max
        assert valid_share >= 0.90


def test_rerun_schedules_nothing_then_only_tracking_onward(demo_run, tmp_path):
    work = copy_finished_run(demo_run, tmp_path)
    assert planned_rules(snakemake(work, "-n", "--quiet", "rules")) == {}

    # Network settings change how bytes arrive, not which: nothing re-runs.
    network = (work / "config/config.yaml").read_text().replace("timeout_s: 60", "timeout_s: 15")
    (work / "network.yaml").write_text(network)
    assert planned_rules(snakemake(work, "-n", "--configfile", "network.yaml", "--quiet", "rules")) == {}

    config = (work / "config/config.yaml").read_text().replace("chip_px: 32", "chip_px: 40")
    (work / "changed.yaml").write_text(config)
    planned = planned_rules(snakemake(work, "-n", "--configfile", "changed.yaml", "--quiet", "rules"))
    n_pairs = len(pd.read_csv(work / "results/demo/pairs.csv"))
    for rule in ("kernel_params", "track", "postprocess", "export_geotiff", "figure_speed"):
        assert planned.get(rule) == n_pairs, planned
    assert not {"query", "fetch", "filter_scene", "demo_data", "define_grid", "select_pairs"} & set(planned), planned
