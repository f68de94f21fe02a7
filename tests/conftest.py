"""Shared fixtures: generated images with known displacements, and a demo workflow run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "workflow", "config", "scripts", "src", "envs", "profiles"]


def textured(shape=(256, 256), seed=0, blur=1.5) -> np.ndarray:
    """Band-limited random texture (unit-ish std)."""
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.standard_normal(shape), blur)
    return img / img.std()


def shifted(img: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``img`` with its content moved by (+dy rows, +dx cols), sub-pixel by Fourier shift."""
    return np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(img), (dy, dx))).real


def copy_workflow(dest: Path) -> Path:
    """A copy of the workflow (no results) to run in isolation."""
    for name in WORKFLOW_FILES:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the snakemake of this interpreter's environment in ``workdir`` (``env``: extra variables)."""
    import os

    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def copy_finished_run(run: Path, dest: Path) -> Path:
    """A fresh workflow copy in ``dest`` holding ``run``'s results, resources and Snakemake
    records with their original mtimes, so that Snakemake sees it as up to date."""
    import os

    work = copy_workflow(dest)
    shutil.copytree(run / "results", work / "results")
    shutil.copytree(run / "resources", work / "resources")
    shutil.copytree(run / ".snakemake", work / ".snakemake", ignore=shutil.ignore_patterns("conda*", "log"))
    for sub in ("results", "resources"):  # copying gives new mtimes in directory order: restore them
        for src in (run / sub).rglob("*"):
            st = src.stat()
            os.utime(work / sub / src.relative_to(run / sub), ns=(st.st_atime_ns, st.st_mtime_ns))
    return work


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The default (demo) workflow, run once per test session in a temporary copy."""
    work = copy_workflow(tmp_path_factory.mktemp("demo_run"))
    snakemake(work)
    return work


def planned_rules(dry_run: subprocess.CompletedProcess) -> dict[str, int]:
    """{rule: job count} from the job-stats table of ``snakemake -n``; empty when nothing is to be done."""
    text = dry_run.stdout + dry_run.stderr
    if "Nothing to be done" in text:
        return {}
    counts, in_table = {}, False
    for line in text.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
        elif in_table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    return counts


def require_program(path: str, package: str) -> None:
    """Skip (outside CI) or fail (in CI) when a Debian program the test needs is missing."""
    import os

    if not Path(path).exists() and not shutil.which(path):
        message = f"{path} missing: install Debian package {package} (`make test` does, as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def nginx():
    """Factory: ``nginx(root)`` starts a real nginx on 127.0.0.1 serving ``root`` (see servers.py)."""
    from servers import NGINX, NginxServer

    require_program(NGINX, "nginx-light")
    started = []

    def start(root) -> NginxServer:
        server = NginxServer(root).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__()


# The loopback STAC API (rustac behind a recording proxy) as a fixture for every test module.
from stac_server import stac_api  # noqa: E402, F401
