"""``tracking.method: ampcor`` runs the workflow: one demo pair re-tracked with ampcor
(its own window parameters) next to the default fft_ncc run, results compared in pixels."""

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import copy_workflow, planned_rules, snakemake
from icetrack.track.offsets_file import read_offsets

pytestmark = pytest.mark.workflow

AMPCOR = """
  ampcor:
    reference_window_px: 32
    search_window_px: 72
    skip_px: 8
    oversampling_factor: 16
    coarse_to_fine: true
"""


def test_demo_pair_runs_with_ampcor(demo_run, tmp_path):
    work = copy_workflow(tmp_path)
    for sub in ("results", "resources"):
        shutil.copytree(demo_run / sub, work / sub)
        for src in (demo_run / sub).rglob("*"):  # copies get new mtimes: restore them
            st = src.stat()
            os.utime(work / sub / src.relative_to(demo_run / sub), ns=(st.st_atime_ns, st.st_mtime_ns))
    shutil.copytree(demo_run / ".snakemake", work / ".snakemake", ignore=shutil.ignore_patterns("conda*", "log"))
    config = (work / "config/config.yaml").read_text()
    start = config.index("  ampcor:")
    end = config.index("\n\n", start)
    config = config[:start] + AMPCOR.strip("\n") + config[end:]
    config = config.replace("method: fft_ncc        # the tracking kernel", "method: ampcor")
    (work / "ampcor.yaml").write_text(config)
    name = pd.read_csv(work / "results/demo/pairs.csv", dtype=str)["pair"].iloc[0]
    target = f"results/demo/{name}/offsets.nc"

    # Up to the tracking rule only: the steps after it do not depend on the kernel.
    planned = planned_rules(snakemake(work, "--until", "track", "-n", "--configfile", "ampcor.yaml", "--quiet", "rules"))
    n_pairs = len(pd.read_csv(work / "results/demo/pairs.csv"))
    assert planned == {"kernel_params": n_pairs, "track": n_pairs}, planned
    snakemake(work, "--until", "track", "--configfile", "ampcor.yaml")

    kernel = json.loads((work / f"results/demo/{name}/kernel.json").read_text())
    assert kernel["method"] == "ampcor" and kernel["chip_px"] == 32 and kernel["search_px"] == 20
    assert kernel["ampcor"]["oversampling_factor"] == 16
    amp = read_offsets(work / target)
    fft = read_offsets(demo_run / target)
    both = np.isfinite(amp.arrays["dx"]) & np.isfinite(fft.arrays["dx"])
    assert both.mean() > 0.3  # the glacier and stable ground around it, minus clouds
    for comp in ("dx", "dy"):
        diff = np.abs(amp.arrays[comp][both] - fft.arrays[comp][both])
        assert np.median(diff) < 0.1, comp  # two kernels, one answer (px)
