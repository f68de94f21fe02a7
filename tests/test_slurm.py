"""The demo for two glaciers through `--profile profiles/slurm` on a real single-node Slurm.

tests/slurm/start_slurm.sh installs Debian's slurm-wlm + munge if missing and starts
munged, slurmctld and slurmd on this machine (root only: CI and `make test` are root);
the module fixture stops them by their pid files and removes the slurm.conf it wrote, so
no daemon outlives the module and later snakemake calls are not slowed (with a conf but
no controller each call would wait ~10 s). Checked: every job of the DAG went through
sbatch (the plugin's submissions = slurmctld's = the jobs the groups make of the DAG),
and the velocity arrays equal those of a local run of the same config.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from conftest import REPO, copy_workflow, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]

SLURM_SCRIPTS = REPO / "tests" / "slurm"
# Few pairs per glacier keep the test short; the DAG still has every rule.
TEST_CONFIG = {"glaciers_table": "config/glaciers_two_demo.tsv", "pairs": {"max_pairs": 1}}


def _need_root() -> None:
    if os.geteuid() != 0:
        message = "the Slurm test starts slurmctld/slurmd and must run as root (`make test` in CI is)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A running single-node Slurm; yields its state dir (logs, pid files)."""
    _need_root()
    state = tmp_path_factory.mktemp("slurm_state")
    start = subprocess.run(["bash", str(SLURM_SCRIPTS / "start_slurm.sh"), str(state)], capture_output=True,
                           text=True)
    if start.returncode == 3:  # a real Slurm of the machine's own: leave it alone
        pytest.skip(start.stderr.strip())
    pids = {line.split()[0]: Path(line.split()[1]) for line in (state / "started").read_text().splitlines()} \
        if (state / "started").exists() else {}
    pid_numbers = {name: int(p.read_text()) for name, p in pids.items() if p.exists()}
    try:
        assert start.returncode == 0, f"start_slurm.sh failed:\n{start.stdout}\n{start.stderr}"
        yield state
    finally:
        subprocess.run(["bash", str(SLURM_SCRIPTS / "stop_slurm.sh"), str(state)], check=False)
        alive = [name for name, pid in pid_numbers.items() if _alive(pid)]
        assert not alive, f"daemons still running after stop_slurm.sh: {alive}"
        assert not Path("/etc/slurm/slurm.conf").exists(), "stop_slurm.sh left /etc/slurm/slurm.conf"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def _prepare(work: Path) -> Path:
    work.mkdir()
    copy_workflow(work)
    (work / "test.yaml").write_text(yaml.safe_dump(TEST_CONFIG))
    return work


def _rule_counts(log: str) -> Counter:
    """Jobs per rule that a local run executed (its "localrule X:" headers)."""
    return Counter(m.group(1) for m in re.finditer(r"^\s*local(?:rule|checkpoint) (\w+):", log, re.M))


def _expected_submissions(jobs: Counter, profile: dict) -> int:
    """sbatch jobs the profile's groups make of these jobs (each grouped connected
    component is per glacier/pair/date; `group-components` packs that many per job)."""
    groups = {"fetch": "scene", "filter_scene": "scene", "kernel_params": "pair", "track": "pair",
              "postprocess": "pair", "export_geotiff": "pair", "figure_speed": "pair", "figure_quality": "pair",
              "cube": "glacier_summary", "timeseries": "glacier_summary", "report_tables": "glacier_summary"}
    per_group = dict(item.split("=") for item in profile["group-components"])
    # Connected components: a scene group per (glacier, date) = fetch jobs; a pair group per
    # pair = track jobs; the cube/timeseries chain and report_tables are 2 components per glacier.
    components = {"scene": jobs["fetch"], "pair": jobs["track"], "glacier_summary": jobs["cube"] + jobs["report_tables"]}
    ungrouped = sum(n for rule, n in jobs.items() if rule not in groups and rule != "all")
    # Group jobs never span glaciers' unrelated parts beyond the packing count; pack per glacier.
    return ungrouped + sum(math.ceil(components[g] / int(per_group[g])) for g in components)


def _velocity_arrays(work: Path) -> dict[str, np.ndarray]:
    out = {}
    for nc in sorted((work / "results").glob("*/*/velocity.nc")):
        with xr.open_dataset(nc) as ds:
            for var in ("vx", "vy", "v", "v_error"):
                out[f"{nc.parent.parent.name}/{nc.parent.name}/{var}"] = ds[var].values
    return out


def test_two_glaciers_through_slurm_match_local_run(slurm_cluster, tmp_path):
    local = _prepare(tmp_path / "local")
    local_run = snakemake(local, "--configfile", "test.yaml")
    jobs = _rule_counts(local_run.stdout + local_run.stderr)
    assert {"demo", "demo_east"} <= {p.name for p in (local / "results").iterdir()}

    cluster = _prepare(tmp_path / "slurm")
    ctld_log = slurm_cluster / "slurmctld.log"
    before = set(re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", ctld_log.read_text()))
    # --cores 2: a group job asks for at most the node's 2 CPUs (parallel members are stacked).
    run = snakemake(cluster, "--profile", "profiles/slurm", "--configfile", "test.yaml", "--slurm-no-account",
                    "--slurm-init-seconds-before-status-checks", "1", "--jobs", "20")
    text = run.stdout + run.stderr
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", text))
    in_ctld = set(re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", ctld_log.read_text())) - before
    assert not re.search(r"^\s*localrule (?!all:)", text, re.M), "a job ran outside Slurm"
    assert submitted == in_ctld, f"plugin says {sorted(submitted)}, slurmctld saw {sorted(in_ctld)}"
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert len(submitted) == _expected_submissions(jobs, profile), (jobs, sorted(submitted))
    # Same DAG, all done: "N of N steps" counts the member jobs of the groups too.
    steps = re.findall(r"(\d+) of (\d+) steps \(100%\) done", text)
    assert steps and steps[-1][0] == str(sum(jobs.values())), (steps, jobs)

    ours, theirs = _velocity_arrays(cluster), _velocity_arrays(local)
    assert ours.keys() == theirs.keys() and len(ours) >= 8
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
