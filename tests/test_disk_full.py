"""A full disk while writing an output gives a clear error and leaves no truncated
file under the output's final name (and keeps what was there before).

Uses a real, small tmpfs (needs root and mount permission; skipped with the reason
otherwise).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

from conftest import copy_workflow, snakemake
from icetrack.common.atomic import DiskFullError, atomic_path, write_text_atomic
from icetrack.outputs.figures import speed_map
from icetrack.common.rasters import dataset_on_grid, write_geotiff, write_netcdf

TRANSFORM = Affine(10, 0, 600000, 0, -10, 4400000)
CRS = "EPSG:32718"


@contextmanager
def mounted_tmpfs(mnt: Path, size: str):
    """A tmpfs of ``size`` mounted at ``mnt`` (skips the test without root), unmounted afterwards."""
    mnt.mkdir(exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", f"icetrack-{uuid.uuid4().hex[:8]}", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({proc.stderr.strip() or 'mount failed'}); needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs at tmp_path/disk."""
    with mounted_tmpfs(tmp_path / "disk", "256k") as mnt:
        yield mnt


def fill(disk: Path, leave_bytes: int) -> None:
    """Fill ``disk`` until about ``leave_bytes`` are free."""
    import shutil

    free = shutil.disk_usage(disk).free
    (disk / "ballast").write_bytes(b"\0" * max(free - leave_bytes, 0))


def noise(n: int = 256) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)  # incompressible


def no_partial_files(disk: Path) -> list[str]:
    return [p.name for p in disk.iterdir() if ".part" in p.name]


def test_geotiff_on_full_disk(tiny_disk):
    fill(tiny_disk, 32_000)
    target = tiny_disk / "v.tif"
    with pytest.raises(DiskFullError, match=r"no space left on the disk holding .* while writing v.tif"):
        write_geotiff(target, noise(), TRANSFORM, CRS)
    assert not target.exists() and not no_partial_files(tiny_disk)


def test_netcdf_on_full_disk(tiny_disk):
    fill(tiny_disk, 32_000)
    target = tiny_disk / "velocity.nc"
    ds = dataset_on_grid({"vx": (noise(), {"units": "m/yr"})}, TRANSFORM, CRS, {})
    with pytest.raises(DiskFullError, match="velocity.nc"):
        write_netcdf(ds, target)
    assert not target.exists() and not no_partial_files(tiny_disk)


def test_figure_on_full_disk(tiny_disk):
    fill(tiny_disk, 8_000)
    target = tiny_disk / "speed.png"
    v = noise(64)
    with pytest.raises(DiskFullError, match="speed.png"):
        speed_map(target, noise(), TRANSFORM, v, v, TRANSFORM, CRS, "full disk")
    assert not target.exists() and not no_partial_files(tiny_disk)


def test_previous_output_survives_a_full_disk(tiny_disk):
    """A re-run that cannot write keeps the earlier result intact under its name."""
    target = tiny_disk / "quality.json"
    write_text_atomic(target, json.dumps({"status": "ok"}))
    fill(tiny_disk, 0)
    with pytest.raises(DiskFullError, match="quality.json"):
        write_text_atomic(target, json.dumps({"status": "ok", "pad": "x" * 100_000}))
    assert json.loads(target.read_text()) == {"status": "ok"}
    assert not no_partial_files(tiny_disk)


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
    final = tmp_path / "offsets.nc"
    stale = tmp_path / ".offsets.nc.abcd1234.part.nc"
    other = tmp_path / ".offsets.nc.gz.abcd1234.part.gz"  # another output's: kept
    stale.write_bytes(b"half")
    other.write_bytes(b"half")
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"whole")
    assert final.read_bytes() == b"whole" and not stale.exists() and other.exists()


def test_workflow_on_a_full_results_disk(tmp_path):
    """The demo with results/ on a 2 MiB tmpfs: the run stops with the clear message and
    every file present under its final name is complete (opens and reads)."""
    (tmp_path / "wf").mkdir()
    work = copy_workflow(tmp_path / "wf")
    with mounted_tmpfs(work / "results", "2m") as results:
        run = snakemake(work, check=False)
        assert run.returncode != 0
        failed = [p.read_text() for p in (work / "logs").rglob("*.log") if "icetrack: error: no space left" in p.read_text()]
        assert failed, run.stderr[-3000:]
        assert not any("Traceback" in text for text in failed)  # one line, not a wall
        assert not [p for p in results.rglob("*") if ".part" in p.name]
        checked = 0
        for path in results.rglob("*"):
            if path.suffix == ".tif":
                with rasterio.open(path) as src:
                    src.read()
            elif path.suffix == ".nc":
                with xr.open_dataset(path) as ds:
                    ds.load()
            elif path.suffix == ".json":
                json.loads(path.read_text())
            else:
                continue
            checked += 1
        assert checked > 0
