"""The whole workflow with a ``stac_api`` source: the demo's scenes published as Earth
Search Sentinel-2 items by a real STAC API on loopback (rustac), their COGs served by a
real nginx, queried, cloud-checked over the glacier, fetched by HTTP range reads and tracked."""

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
from icetrack.demo import CLOUDY_SCENE, DEMO_DATES, make_demo
from icetrack.evaluate import sample_truth
from stac_items import earth_search_s2_item
from stac_server import stac_api  # noqa: F401 - fixture

pytestmark = pytest.mark.workflow


def demo_as_earth_search_items(catalog_path, base_url: str, root) -> list[dict]:
    """The demo catalogue's items rewritten in the Earth Search ``sentinel-2-c1-l2a`` layout,
    their hrefs on the web server."""
    items = []
    for item in sorted(pystac.Catalog.from_file(str(catalog_path)).get_all_items(), key=lambda i: i.datetime):
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
    cfg["fetch"] = {**cfg.get("fetch", {}), "allow_http": True}  # the loopback API and nginx speak plain http
    (work / "config/config.yaml").write_text(yaml.safe_dump(cfg))
    (work / "glaciers.tsv").write_text(
        "glacier_id\tname\tsource\tstart_date\tend_date\toutline\tstable_ground\n"
        f"stacglacier\tDemo via STAC\tsentinel2\t2024-01-01\t2024-06-30\t{data / 'outline.geojson'}\t"
        f"{data / 'stable_ground.geojson'}\n")
    web.clear_log()
    snakemake(work)

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
