"""The fetch step through Snakemake with the demo's STAC catalogue served over HTTP: by a
real nginx (window and download modes give the same scenes as local reads), and by the
fault server (a permanent failure ends the job with one line naming the URL and the
status, and leaves nothing under results/ nor a partial file in the cache). The items'
STAC file:size/file:checksum travel through scenes.csv to the download cache's checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml

from conftest import copy_workflow, snakemake
from faultserver import FaultServer

SOURCE = {"type": "stac_static", "band_asset": "nir", "cloud_asset": "scl", "cloud_classes": [3, 8, 9, 10],
          "scale": 0.00025, "offset": -0.25}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A workflow copy with the demo data generated, the demo glacier fetched locally, and a
    glacier table naming the same glacier with a remote source."""
    work = copy_workflow(tmp_path_factory.mktemp("remote_fetch"))
    snakemake(work, "results/demo/pairs.csv")
    dates = sorted(set(pd.read_csv(work / "results/demo/scenes.csv", dtype=str)["date"]))[:2]
    snakemake(work, *[f"results/demo/scenes/{d}.tif" for d in dates])
    add_file_info(work / "resources/demo/stac")
    table = pd.read_csv(work / "config/glaciers.tsv", sep="\t", dtype=str, keep_default_na=False)
    table = table.assign(glacier_id="remote", source="remote", points="")
    table.to_csv(work / "remote.tsv", sep="\t", index=False)
    return work, dates


def add_file_info(stac: Path) -> None:
    """Give each item's nir asset its STAC file:size and file:checksum (SHA-256 multihash), as
    Earth Search items have them (the demo's catalogue has none)."""
    for item_path in stac.rglob("*.json"):
        item = json.loads(item_path.read_text())
        if "nir" not in item.get("assets", {}):
            continue
        data = (item_path.parent / item["assets"]["nir"]["href"]).resolve().read_bytes()
        item["assets"]["nir"].update({"file:size": len(data), "file:checksum": "1220" + hashlib.sha256(data).hexdigest()})
        item_path.write_text(json.dumps(item))


def run_remote(work, catalog_url: str, fetch: dict, dates: list[str], check: bool = True):
    config = {"glaciers_table": "remote.tsv", "sources": {"remote": {**SOURCE, "catalog": catalog_url}},
              "fetch": {"allow_http": True, "retry_delay_s": 0.05, "max_retries": 2, "timeout_s": 5, **fetch}}
    (work / "remote.yaml").write_text(yaml.safe_dump(config))
    targets = ["results/remote/pairs.csv", *[f"results/remote/scenes/{d}.tif" for d in dates]]
    return snakemake(work, *targets, "--configfile", "remote.yaml", check=check)  # --configfile takes 1+ values


def band(path):
    with rasterio.open(path) as src:
        return src.read(1)


@pytest.mark.parametrize("mode", ["window", "download"])
def test_remote_scenes_equal_local_ones(work, nginx, mode):
    work, dates = work
    for stale in (work / "results/remote").glob("scenes/*.tif"):
        stale.unlink()
    server = nginx(work / "resources/demo")
    run_remote(work, server.href("stac/catalog.json"), {"mode": mode, "cache_dir": f"resources/cache_{mode}"}, dates)
    for d in dates:
        np.testing.assert_array_equal(band(work / f"results/remote/scenes/{d}.tif"), band(work / f"results/demo/scenes/{d}.tif"))
    scenes = pd.read_csv(work / "results/remote/scenes.csv", dtype=str)
    assert scenes["size_bytes"].str.isdigit().all() and scenes["checksum"].str.startswith("1220").all()
    cached = sorted(p.name for p in (work / f"resources/cache_{mode}").rglob("*.tif"))
    nir_gets = [line for line in server.log() if line.path.endswith("_nir.tif") and line.method == "GET"]
    if mode == "download":
        assert len(cached) == 2 * len(dates)  # nir and scl of each date, whole
        assert all(line.range == "" and line.status == 200 for line in nir_gets)
        log = (work / f"logs/remote/fetch/{dates[0]}.log").read_text()
        assert "download " in log and "cached http://" in log  # progress bar and the cache line
    else:
        assert cached == [] and nir_gets and all(line.range for line in nir_gets)


@pytest.mark.parametrize("mode, fault, expected", [
    ("window", {"kind": "status", "code": 500}, "HTTP 500"),
    # Content-Length 1000 bytes short: only the catalogue's file:size can tell
    ("download", {"kind": "lie_length", "delta": -1000}, "the catalogue (file:size) says"),
])
def test_a_permanent_failure_is_one_line_and_leaves_nothing_behind(work, mode, fault, expected):
    work, dates = work
    fault = dict(fault)
    with FaultServer(work / "resources/demo") as server:
        server.inject(fault.pop("kind"), times=10_000, path_suffix="_nir.tif", method="GET", **fault)
        proc = run_remote(work, server.href("stac/catalog.json"), {"mode": mode, "cache_dir": "resources/cache_bad"},
                          dates[:1], check=False)
    assert proc.returncode != 0
    log = (work / f"logs/remote/fetch/{dates[0]}.log").read_text()
    last = log.strip().splitlines()[-1]
    assert last.startswith("icetrack: error: ") and expected in last
    print("\n" + last)
    assert "_nir.tif" in last and "Traceback" not in log
    assert not (work / f"results/remote/scenes/{dates[0]}.tif").exists()
    leftovers = [p.name for p in (work / "resources/cache_bad").rglob("*") if p.is_file() and p.suffix != ".lock"] \
        if (work / "resources/cache_bad").exists() else []
    assert leftovers == []
