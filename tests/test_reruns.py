"""Exact re-runs for several glaciers: a change re-runs only the jobs it affects.

Built on the session's demo run (glacier ``demo``) plus a second glacier over the same
scenes (``demo_east``, a bbox row, 2 pairs to stay quick), run once for this module.
Every check is a dry run (``snakemake -n``) read job by job: which rules, for which
glacier, for which date.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import copy_finished_run, planned_rules, snakemake

pytestmark = pytest.mark.workflow

DEMO_ROW = "demo\tDemo Glacier (synthetic)\tdemo\t2024-01-01\t2024-06-30\tresources/demo/outline.geojson\t\t" \
           "resources/demo/stable_ground.geojson\t\t{demo_overrides}\ttrunk:-73.56239:-50.35816;rock:-73.57962:-50.37419"
EAST_ROW = "demo_east\tDemo Glacier, upper basin\tdemo\t2024-01-01\t2024-06-30\t\t" \
           "-73.54784,-50.35580,-73.52012,-50.34286\tresources/demo/stable_ground.geojson\t\t{east_overrides}\t"
HEADER = "glacier_id\tname\tsource\tstart_date\tend_date\toutline\tbbox\tstable_ground\tcrs\toverrides\tpoints"
EAST_OVERRIDES = {"grid": {"buffer_m": 1000}, "pairs": {"max_pairs": 2}}
PAIR_RULES = {"kernel_params", "track", "postprocess", "export_geotiff", "figure_speed", "figure_quality"}
UPSTREAM = {"demo_data", "query", "select_pairs", "define_grid", "fetch"}


def write_table(work: Path, demo_overrides: dict | None = None, east_overrides: dict | None = None,
                rows: tuple[str, ...] = ("demo", "demo_east")) -> None:
    lines = {"demo": DEMO_ROW.format(demo_overrides=json.dumps(demo_overrides) if demo_overrides else ""),
             "demo_east": EAST_ROW.format(east_overrides=json.dumps(east_overrides or EAST_OVERRIDES))}
    (work / "config/glaciers.tsv").write_text("\n".join([HEADER] + [lines[r] for r in rows]) + "\n")


def planned_jobs(dry_run) -> Counter:
    """{(rule, glacier, date or pair or ""): count} of the jobs a dry run lists."""
    jobs = Counter()
    text = dry_run.stdout + dry_run.stderr
    for block in re.split(r"\n\s*\n", text):
        rule = re.search(r"^\s*(?:local)?(?:rule|checkpoint) (\w+):", block, re.M)
        if not rule or rule.group(1) == "all":
            continue
        wildcards = re.search(r"^\s*wildcards: (.*)$", block, re.M)
        values = dict(kv.split("=", 1) for kv in wildcards.group(1).split(", ")) if wildcards else {}
        jobs[rule.group(1), values.get("glacier", ""), values.get("date", values.get("pair", ""))] += 1
    return jobs


def rule_counts(jobs: Counter) -> Counter:
    counts = Counter()
    for (rule, _, _), n in jobs.items():
        counts[rule] += n
    return counts


def glaciers_of(jobs: Counter) -> set[str]:
    return {glacier for _, glacier, _ in jobs if glacier}


@pytest.fixture(scope="module")
def two_glaciers(demo_run, tmp_path_factory):
    """(workdir, dry run made before running demo_east): the demo run plus a second glacier."""
    work = copy_finished_run(demo_run, tmp_path_factory.mktemp("two_glaciers"))
    write_table(work)
    before = snakemake(work, "-n")
    snakemake(work)
    return work, before


def test_adding_a_row_runs_only_that_glaciers_jobs(two_glaciers):
    work, before = two_glaciers
    jobs = planned_jobs(before)
    assert glaciers_of(jobs) == {"demo_east"}, jobs
    assert {rule for rule, _, _ in jobs} == {"query", "select_pairs"}, jobs  # the rest follows the checkpoint
    assert len(pd.read_csv(work / "results/demo_east/pairs.csv")) == 2


def test_nothing_changed_schedules_nothing_for_all_or_a_subset(two_glaciers):
    work, _ = two_glaciers
    assert planned_rules(snakemake(work, "-n")) == {}
    for subset in ("demo", "demo_east", "demo,demo_east"):
        assert planned_rules(snakemake(work, "-n", "--config", f"glaciers={subset}")) == {}


def test_per_glacier_tracking_override_reruns_that_glacier_from_tracking_on(two_glaciers, tmp_path):
    work = copy_finished_run(two_glaciers[0], tmp_path)
    write_table(work, east_overrides={**EAST_OVERRIDES, "tracking": {"chip_px": 40}})
    jobs = planned_jobs(snakemake(work, "-n"))
    assert glaciers_of(jobs) == {"demo_east"}, jobs
    rules = rule_counts(jobs)
    for rule in PAIR_RULES:
        assert rules[rule] == 2, rules
    assert not (UPSTREAM | {"filter_scene"}) & set(rules), rules
    assert set(rules) - PAIR_RULES <= {"cube", "timeseries", "report_tables"}, rules


def test_filter_parameter_reruns_filter_onward_not_fetch(two_glaciers, tmp_path):
    work = copy_finished_run(two_glaciers[0], tmp_path)
    write_table(work)
    # Only the changed value: --configfile files are merged over config/config.yaml. (A
    # full re-dump would also reorder keys, and Snakemake's params trigger sees order.)
    (work / "changed.yaml").write_text(yaml.safe_dump({"filter": {"gaussian_hp": {"sigma_px": 2.5}}}))
    jobs = planned_jobs(snakemake(work, "-n", "--configfile", "changed.yaml"))
    rules = {rule for rule, _, _ in jobs}
    assert glaciers_of(jobs) == {"demo", "demo_east"}
    assert {"filter_scene", "track", "postprocess", "export_geotiff"} <= rules, rules
    assert not (UPSTREAM | {"kernel_params"}) & rules, rules  # the kernel does not depend on the filter
    scenes = {g: len(list((work / "results" / g / "filtered").glob("*.tif"))) for g in ("demo", "demo_east")}
    assert sum(n for (rule, _, _), n in jobs.items() if rule == "filter_scene") == sum(scenes.values())


def add_scene(catalog_dir: Path, copy_of: str, new_date: str) -> None:
    """Put a new acquisition into the demo's static STAC catalogue (a copy of an existing scene's files)."""
    import pystac

    catalog = pystac.Catalog.from_file(str(catalog_dir / "catalog.json"))
    item = next(i for i in catalog.get_items() if i.id == f"DEMO_{copy_of}").clone()
    item.id = f"DEMO_{new_date}"
    item.datetime = item.datetime.replace(year=int(new_date[:4]), month=int(new_date[4:6]), day=int(new_date[6:]))
    for key, asset in item.assets.items():
        old = Path(asset.get_absolute_href())
        new = old.with_name(old.name.replace(copy_of, new_date))
        shutil.copy2(old, new)
        asset.href = str(new)
    catalog.add_item(item)
    catalog.normalize_hrefs(str(catalog_dir))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)


def test_new_scene_runs_only_its_date_and_new_pairs(two_glaciers):
    """Last in the module: it changes the shared run in place. In place, because the scene
    hrefs in the fetch params are absolute paths: a copy elsewhere would re-fetch everything."""
    work, _ = two_glaciers
    glacier = work / "results/demo_east"
    old_pairs = set(pd.read_csv(glacier / "pairs.csv", dtype=str)["pair"])
    fetched = {p.stem for p in (glacier / "scenes").glob("*.tif")}
    add_scene(work / "resources/demo/stac", "20240504", "20240613")
    # The query and the pair choice run (the catalogue changed); what follows is then known.
    snakemake(work, "--config", "glaciers=demo_east", "--until", "select_pairs")
    pairs = set(pd.read_csv(glacier / "pairs.csv", dtype=str)["pair"])
    new_pairs = pairs - old_pairs
    assert new_pairs and all("20240613" in p for p in new_pairs), (old_pairs, pairs)
    jobs = planned_jobs(snakemake(work, "-n", "--config", "glaciers=demo_east"))
    new_dates = {d for p in pairs for d in p.split("_")} - fetched
    for rule in ("fetch", "filter_scene"):
        assert {when for r, _, when in jobs if r == rule} == new_dates, (rule, jobs)
    for rule in PAIR_RULES:
        assert {when for r, _, when in jobs if r == rule} == new_pairs, (rule, jobs)
    assert not {"query", "select_pairs", "define_grid", "demo_data"} & {rule for rule, _, _ in jobs}, jobs
    assert glaciers_of(jobs) == {"demo_east"}
