"""The whole workflow with a ``stac_api`` source: the demo's scenes published as Earth
Search Sentinel-2 items by a real STAC API on loopback (rustac), their COGs served by a
real nginx, queried, cloud-checked over the glacier, fetched by HTTP range reads and tracked.

The run carries planted credentials — a bearer token (``fetch.token_env``), AWS keys and a
``.netrc`` password — and none of them may appear in any output, log, benchmark,
Snakemake metadata file or the report."""

from __future__ import annotations

import json
from datetime import timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pystac
import pytest
import xarray as xr
import yaml
from affine import Affine

from conftest import copy_workflow, snakemake
from icetrack.demo.synthetic import CLOUDY_SCENE, DEMO_DATES, make_demo
from icetrack.bench.evaluate import sample_truth
from stac_items import earth_search_s2_item

pytestmark = pytest.mark.workflow

PLANTED = {  # credentials the run is given; each must stay out of everything it writes
    "token": "planted-bearer-7f3c9a1e5d", "aws_id": "AKIAPLANTED4Q7Z2X9W1",
    "aws_secret": "planted+aws/secret9d8e7f6a5b4c3d2e1f0a", "netrc": "planted-netrc-pw-51c0ffee",
}


def demo_as_earth_search_items(catalog_path, base_url: str, root) -> list[dict]:
    """The demo catalogue's items rewritten in the Earth Search ``sentinel-2-c1-l2a`` layout,
    their hrefs on the web server."""
    items = []
    for item in sorted(pystac.Catalog.from_file(str(catalog_path)).get_items(recursive=True), key=lambda i: i.datetime):
        p = item.properties
        transform, shape = Affine(*p["proj:transform"]), tuple(p["proj:shape"])
        href = lambda key: f"{base_url}/{Path(item.assets[key].get_absolute_href()).relative_to(root).as_posix()}"  # noqa: E731
        t = item.datetime.astimezone(timezone.utc)
        items.append(earth_search_s2_item(
            f"S2A_T18FXK_{t:%Y%m%dT%H%M%S}_L2A", t, epsg=32718, nir=(href("nir"), transform, shape),
            scl=(href("scl"), transform, shape), cloud_cover=p["eo:cloud_cover"], orbit=96))
    return items


def test_workflow_end_to_end_with_a_stac_api_source(tmp_path, nginx, stac_api):
    data = tmp_path / "data"
    catalog = make_demo(data, seed=0)
    web = nginx(data)
    api = stac_api(demo_as_earth_search_items(catalog, web.url, data))

    (tmp_path / "run").mkdir()
    work = copy_workflow(tmp_path / "run")
    cfg = yaml.safe_load((work / "config/config.yaml").read_text())
    cfg["glaciers_table"] = "glaciers.tsv"
    cfg["sources"] = {"sentinel2": {"type": "stac_api", "preset": "earth_search_s2", "url": api.url, "page_size": 2}}
    cfg["pairs"].update(max_pairs=1, max_cloud_fraction=0.5)
    # The loopback API and nginx speak plain http; a bearer token is sent with every read.
    cfg["fetch"] = {**cfg.get("fetch", {}), "allow_http": True, "token_env": "ICETRACK_TEST_TOKEN"}
    (work / "config/config.yaml").write_text(yaml.safe_dump(cfg))
    (work / "glaciers.tsv").write_text(
        "glacier_id\tname\tsource\tstart_date\tend_date\toutline\tstable_ground\n"
        f"stacglacier\tDemo via STAC\tsentinel2\t2024-01-01\t2024-06-30\t{data / 'outline.geojson'}\t"
        f"{data / 'stable_ground.geojson'}\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text(f"machine 127.0.0.1 login icetrack password {PLANTED['netrc']}\n")
    (home / ".netrc").chmod(0o600)
    env = {"ICETRACK_TEST_TOKEN": PLANTED["token"], "AWS_ACCESS_KEY_ID": PLANTED["aws_id"],
           "AWS_SECRET_ACCESS_KEY": PLANTED["aws_secret"], "HOME": str(home)}
    web.clear_log()
    runs = [snakemake(work, env=env), snakemake(work, "--report", "report.html", env=env)]

    res = work / "results/stacglacier"
    scenes = pd.read_csv(res / "scenes.csv", dtype={"date": str})
    assert list(scenes["date"]) == [f"{d:%Y%m%d}" for d in DEMO_DATES]
    assert set(scenes["collection"]) == {"sentinel-2-c1-l2a"}
    cloudy = scenes["cloud_fraction_glacier"].to_numpy()
    print("glacier cloud fractions:", cloudy.tolist(), "tile cloud %:", scenes["cloud_cover_tile_pct"].tolist())
    assert cloudy[CLOUDY_SCENE] > 0.05 and np.delete(cloudy, CLOUDY_SCENE).max() == 0.0
    assert len(api.proxy.searches()) == 2  # 4 items at 2 per page

    pairs = pd.read_csv(res / "pairs.csv", dtype=str)
    assert len(pairs) == 1
    pair = pairs["pair"].iloc[0]
    with xr.open_dataset(res / pair / "velocity.nc") as ds:
        truth = np.hypot(sample_truth(str(data / "truth_vx.tif"), ds), sample_truth(str(data / "truth_vy.tif"), ds))
        v = ds["v"].values
    ice = truth > 0.02 * np.nanmax(truth)
    valid = ice & np.isfinite(v)
    err = float(np.median(np.abs(v[valid] - truth[valid])))
    print(f"{pair}: {valid.sum()} of {ice.sum()} ice points valid, median |dv| {err:.1f} m/yr")
    assert valid.sum() > 0.8 * ice.sum() and err < 0.03 * np.nanmax(truth)
    assert json.loads((res / pair / "quality.json").read_text())["status"] == "ok"

    # The images came over HTTP as range reads, not whole-file downloads.
    gets = [line for line in web.log() if line.method == "GET" and line.path.endswith(".tif")]
    assert gets and all(line.status == 206 for line in gets)
    unauthorised = sorted({line.path for line in gets if line.authorization != f"Bearer {PLANTED['token']}"})
    assert not unauthorised, unauthorised  # the token was really used, for every read

    # No planted credential anywhere the run wrote, nor in what it printed.
    assert (work / "report.html").stat().st_size > 100_000
    written = [p for p in work.rglob("*") if p.is_file() and not p.is_relative_to(work / "src")]
    assert any(p.is_relative_to(work / "logs") for p in written) and any(p.suffix == ".nc" for p in written)
    for name, secret in PLANTED.items():
        leaks = [str(p.relative_to(work)) for p in written if secret.encode() in p.read_bytes()]
        leaks += [f"output of {' '.join(r.args[3:])}" for r in runs if secret in r.stdout + r.stderr]
        assert not leaks, f"planted {name} found in {leaks}"
    print(f"no planted credential in {len(written)} files written by the run")
