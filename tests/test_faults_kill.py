"""A run killed with SIGKILL (the whole Snakemake process group: power loss, a
cancelled cluster job) during the demo's generation, during fetch and during
tracking is recovered by `snakemake --unlock` + a re-run; a single job killed (the
OOM killer) by a plain re-run. The final outputs equal those of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from conftest import copy_workflow, snakemake

pytestmark = pytest.mark.workflow


def job_pids(work: Path, script: str) -> list[int]:
    """Processes running ``script`` for the workflow in ``work`` (Snakemake copies it to .snakemake/scripts/)."""
    pids = []
    for proc_dir in Path("/proc").iterdir():
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(work / ".snakemake/scripts") in cmdline and cmdline.rstrip("\0").endswith(script):
            pids.append(int(proc_dir.name))
    return pids


def kill_job_when(work: Path, script: str, timeout_s: float = 120.0) -> None:
    """Start the workflow and SIGKILL only the job running ``script`` (as the OOM killer would)."""
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=work, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    try:
        while not (pids := job_pids(work, script)):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no {script} job seen")
            time.sleep(0.02)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert proc.wait(timeout=timeout_s) != 0  # Snakemake reports the failed job and stops
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def kill_when(work: Path, ready, timeout_s: float = 120.0) -> None:
    """Start the workflow, SIGKILL its whole process group once ``ready(work)`` is true."""
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=work, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    try:
        while not ready(work):
            if proc.poll() is not None:
                pytest.fail("the run finished before the kill point was reached")
            if time.monotonic() > deadline:
                pytest.fail("kill point not reached in time")
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()


def running(pattern: str):
    """True once a job writing a log matching ``pattern`` has started."""
    return lambda work: any(work.glob(pattern))


def comparable(root: Path) -> dict[str, object]:
    """Every output under results/ reduced to comparable content (paths made relative)."""
    out: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            continue
        rel = str(path.relative_to(root))
        if path.suffix == ".tif":
            with rasterio.open(path) as src:
                out[rel] = (src.read(), src.crs.to_string(), tuple(src.transform), src.tags())
        elif path.suffix == ".nc":
            with xr.open_dataset(path) as ds:
                out[rel] = ds.load()
        elif path.suffix == ".json":
            out[rel] = json.loads(path.read_text())
        elif path.suffix == ".csv":
            out[rel] = path.read_text().replace(str(root.parent), "<work>")
        else:
            out[rel] = path.read_bytes()
    return out


def assert_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b), set(a) ^ set(b)
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, xr.Dataset):
            xr.testing.assert_identical(x, y)
        elif isinstance(x, tuple):
            np.testing.assert_array_equal(x[0], y[0], err_msg=key)
            assert x[1:] == y[1:], key
        else:
            assert x == y, key


def test_sigkill_during_demo_fetch_and_track_then_rerun_equals_clean_run(demo_run, tmp_path):
    work = copy_workflow(tmp_path)
    kill_points = {
        "demo generation": running("logs/demo_data.log"),
        "fetch": running("logs/demo/fetch/*.log"),
        "tracking": running("logs/demo/*/track.log"),
    }
    for name, ready in kill_points.items():
        kill_when(work, ready)
        # A killed Snakemake leaves its lock behind: the documented recovery is --unlock.
        assert any((work / ".snakemake/locks").iterdir()), name
        assert any((work / ".snakemake/incomplete").iterdir()), f"no job was in flight at the {name} kill"
        snakemake(work, "--unlock")
    # Only the postprocess job killed: Snakemake itself exits cleanly (no lock), the re-run redoes it.
    kill_job_when(work, "postprocess.py")
    locks = work / ".snakemake/locks"
    assert not (locks.exists() and any(locks.iterdir()))
    snakemake(work)
    assert not [p for p in (work / "results").rglob("*") if ".part" in p.name]
    assert_same(comparable(work / "results"), comparable(demo_run / "results"))
