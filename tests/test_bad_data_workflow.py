"""Bad data through the real workflow, from the user's own local files: scenes in
different CRSs, resolutions and dtypes (8-bit UTM 18S at 10 m, 16-bit UTM 19S at
20 m) and one scene with no valid pixel. The good pair measures the known motion;
the pairs with the empty scene finish with ``status: empty`` and a reason, and the
run's summary line says so."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from affine import Affine
from pyproj import Transformer
from rasterio.warp import Resampling, calculate_default_transform, reproject

from conftest import REPO, copy_workflow, shifted, snakemake, textured

pytestmark = pytest.mark.workflow

BBOX = (-73.064, -50.479, -73.036, -50.461)  # ~2 × 2 km, UTM zone 18S
FINE = 5.0  # m, the "true" surface the scenes are sampled from
SHIFT_PX = 4.0  # fine pixels east inside the glacier = 20 m
DT_DAYS = 40


def make_scenes(d):
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32718", always_xy=True)
    (x0, y0), (x1, y1) = to_utm.transform(BBOX[0], BBOX[3]), to_utm.transform(BBOX[2], BBOX[1])
    west, north = np.floor(x0 / 100) * 100 - 2000, np.ceil(y0 / 100) * 100 + 2000
    n = int((x1 - x0 + 4000) / FINE)
    tr = Affine(FINE, 0, west, 0, -FINE, north)
    surface = (textured((n, n), seed=7, blur=4.0) * 0.08 + 0.5).astype(np.float32)
    moved = surface.copy()
    c0, r0 = int((x0 - west) / FINE), int((north - y0) / FINE)
    c1, r1 = int((x1 - west) / FINE), int((north - y1) / FINE)
    moved[r0:r1, c0:c1] = shifted(surface, 0.0, SHIFT_PX)[r0:r1, c0:c1]  # only the glacier moves

    def write(name, data, crs, res, dtype, scale, nodata):
        if crs == "EPSG:32718":
            dst_tr, w, h = Affine(res, 0, west, 0, -res, north), int(n * FINE / res), int(n * FINE / res)
        else:
            bounds = rasterio.transform.array_bounds(n, n, tr)
            dst_tr, w, h = calculate_default_transform("EPSG:32718", crs, n, n, *bounds, resolution=res)
        out = np.full((h, w), np.nan, np.float32)
        reproject(data, out, src_transform=tr, src_crs="EPSG:32718", dst_transform=dst_tr, dst_crs=crs,
                  resampling=Resampling.average if crs == "EPSG:32718" else Resampling.cubic, dst_nodata=np.nan)
        values = np.where(np.isfinite(out), np.clip(out * scale, 1, None), nodata).astype(dtype)
        with rasterio.open(d / name, "w", driver="GTiff", width=w, height=h, count=1, dtype=dtype, crs=crs,
                           transform=dst_tr, nodata=nodata) as dst:
            dst.write(values, 1)
        return str(d / name)

    a = write("a_uint8.tif", surface, "EPSG:32718", 10.0, "uint8", 255, 0)
    b = write("b_uint16_utm19.tif", moved, "EPSG:32719", 20.0, "uint16", 20000, 0)
    c = write("c_empty.tif", np.full_like(surface, np.nan), "EPSG:32718", 10.0, "float32", 1.0, -9999.0)
    return [a, b, c]


def test_local_files_in_mixed_crs_resolution_dtype_and_an_empty_scene(tmp_path):
    work = copy_workflow(tmp_path)
    files = make_scenes(work)
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    cfg["glaciers_table"] = "glaciers_local.tsv"
    cfg["sources"]["local"] = {"type": "local_files", "files": [
        {"path": f, "date": day} for f, day in zip(files, ["2024-01-10", "2024-02-19", "2024-03-30"])]}
    cfg["grid"]["buffer_m"] = 600
    cfg["postprocess"]["min_stable_points"] = 10
    (work / "local.yaml").write_text(yaml.safe_dump(cfg))
    (work / "glaciers_local.tsv").write_text(
        "glacier_id\tname\tsource\tstart_date\tend_date\tbbox\n"
        f"mixed\tMixed inputs\tlocal\t2024-01-01\t2024-12-31\t{','.join(map(str, BBOX))}\n")
    run = snakemake(work, "--configfile", "local.yaml")
    res = work / "results/mixed"
    pairs = pd.read_csv(res / "pairs.csv", dtype=str)["pair"].tolist()
    assert pairs == ["20240110_20240219", "20240110_20240330", "20240219_20240330"]

    good = json.loads((res / "20240110_20240219/quality.json").read_text())
    assert good["status"] == "ok", good["reason"]
    import xarray as xr

    with xr.open_dataset(res / "20240110_20240219/velocity.nc") as ds:
        vx = ds["vx"].values
    expected = SHIFT_PX * FINE / DT_DAYS * 365.25  # 182.6 m/yr east
    inner = vx[vx > expected / 2]
    print(f"mixed inputs: median vx on moving ice {np.median(inner):.1f} m/yr (expected {expected:.1f}), "
          f"{inner.size} points")
    assert inner.size > 50 and np.median(inner) == pytest.approx(expected, rel=0.05)

    for pair in pairs[1:]:
        q = json.loads((res / pair / "quality.json").read_text())
        assert q["status"] == "empty" and "no valid pixel" in q["reason"], q
        with rasterio.open(res / pair / "v.tif") as src:
            assert np.isnan(src.read(1)).all()
    summary = [ln for ln in run.stderr.splitlines() if ln.startswith("icetrack: mixed:")]
    assert summary and "3 pair(s), 1 with a velocity map" in summary[0] and "EMPTY" in summary[0]
