"""Cluster resources are sized from the data a job reads (icetrack.cluster.resources)."""

import json

import pytest

from icetrack.cluster.resources import JobSize, grid_pixels, job_memory_mb, job_runtime_min, mem_mb

FULL_SCENE = JobSize(pixels=10980 * 10981, points=1874161)  # the measured full-scene pair (docs/scaling.md)


def test_memory_and_time_grow_with_the_data_and_the_attempt():
    small = JobSize(pixels=682 * 512, points=5500)
    for step in ("fetch", "filter", "track", "postprocess"):
        assert job_memory_mb(step, small) < job_memory_mb(step, FULL_SCENE)
        assert job_runtime_min(step, small) <= job_runtime_min(step, FULL_SCENE)
        assert job_memory_mb(step, FULL_SCENE, attempt=2) >= 2 * job_memory_mb(step, FULL_SCENE) - 100


def test_full_scene_requests_cover_the_measured_peaks():
    measured_mb = {"fetch": 1838, "filter": 1855, "track": 1907, "postprocess": 1254}  # python -m icetrack.bench.full_scene
    for step, peak in measured_mb.items():
        assert peak < job_memory_mb(step, FULL_SCENE) <= 2 * peak + 500, step


def test_missing_input_defers_evaluation(tmp_path):
    """Before the upstream job ran, FileNotFoundError naming the input tells Snakemake "later"."""
    grid = tmp_path / "grid.json"

    class Input(list):
        pass

    job_input = Input([str(grid)])
    job_input.grid = str(grid)
    with pytest.raises(FileNotFoundError) as err:
        mem_mb("fetch")(None, job_input, 1)
    assert err.value.filename == str(grid)
    grid.write_text(json.dumps({"width": 100, "height": 50}))
    assert grid_pixels(grid) == 5000
    assert mem_mb("fetch")(None, job_input, 1) >= 300
