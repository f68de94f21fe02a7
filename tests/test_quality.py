"""GLAFT metrics: icetrack.postprocess.quality agrees with the `glaft` package (Zheng et al. 2023) on
the same inputs, and behaves as the definitions say on fields of known noise."""

import contextlib
import io
import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.features import geometry_mask
from shapely import affinity
from shapely.geometry import Point, box, mapping

from icetrack.postprocess.quality import glaft_metrics, kde_peak_width

glaft = pytest.importorskip("glaft", reason="glaft (pinned in requirements.txt) is the reference")

CRS = "EPSG:32618"
PX = 80.0  # m, an icetrack output grid (step 8 × 10 m)
TRANSFORM = Affine(PX, 0, 500_000, 0, -PX, 4_400_000)
SHAPE = (60, 80)
DT_DAYS = 40.0


def velocity_map(seed=1, noise=15.0, outliers=0.03, gaps=0.05):
    """A glacier flowing at 20° (speed 400·(1 − r²) m/yr) in noisy, partly wrong, gappy
    measurements; with its ice polygon and a stable-ground polygon 300 m off the ice."""
    rng = np.random.default_rng(seed)
    h, w = SHAPE
    rows, cols = np.mgrid[0:h, 0:w]
    x, y = TRANSFORM @ (cols + 0.5, rows + 0.5)
    cx, cy = TRANSFORM @ (w / 2, h / 2)
    ice = affinity.rotate(affinity.scale(Point(cx, cy).buffer(1), 2200, 1300), 20, origin=(cx, cy))
    stable = box(*TRANSFORM @ (0, h), *TRANSFORM @ (w, 0)).difference(ice.buffer(300))
    a = np.deg2rad(20)
    along = (x - cx) * np.cos(a) + (y - cy) * np.sin(a)
    across = -(x - cx) * np.sin(a) + (y - cy) * np.cos(a)
    speed = 400 * np.clip(1 - (along / 2200) ** 2 - (across / 1300) ** 2, 0, None)
    vx = speed * np.cos(a) + noise * rng.standard_normal(SHAPE)
    vy = speed * np.sin(a) + noise * rng.standard_normal(SHAPE)
    bad = rng.random(SHAPE) < outliers
    vx[bad] += rng.uniform(-300, 300, bad.sum())
    vy[bad] += rng.uniform(-300, 300, bad.sum())
    vx[rng.random(SHAPE) < gaps] = np.nan
    vy[np.isnan(vx)] = np.nan
    return vx.astype(np.float32), vy.astype(np.float32), ice, stable


def write_inputs(tmp_path, vx, vy, ice, stable, nodata=np.nan):
    paths = {}
    for name, arr in (("vx", vx), ("vy", vy)):
        paths[name] = str(tmp_path / f"{name}.tif")
        data = np.where(np.isfinite(arr), arr, nodata).astype(np.float32)
        with rasterio.open(paths[name], "w", driver="GTiff", width=SHAPE[1], height=SHAPE[0], count=1,
                           dtype="float32", crs=CRS, transform=TRANSFORM, nodata=nodata) as dst:
            dst.write(data, 1)
    for name, geom in (("ice", ice), ("stable", stable)):
        paths[name] = str(tmp_path / f"{name}.geojson")
        (tmp_path / f"{name}.geojson").write_text(json.dumps({
            "type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": CRS}},
            "features": [{"type": "Feature", "properties": {}, "geometry": mapping(geom)}]}))
    return paths


def glaft_reference(paths, **kwargs):
    """GLAFT's own numbers (its progress prints silenced)."""
    common = dict(vxfile=paths["vx"], vyfile=paths["vy"], static_area=paths["stable"], on_ice_area=paths["ice"],
                  nodata=-9999.0, **kwargs)
    with contextlib.redirect_stdout(io.StringIO()):
        static = glaft.Velocity(**common)
        static.static_terrain_analysis()
        strain = glaft.Velocity(**common)
        strain.longitudinal_shear_analysis()
    return static, strain


def masks(ice, stable):
    """Polygons → point masks as rasterio.mask does it (pixel centre inside)."""
    inside = lambda g: ~geometry_mask([mapping(g)], SHAPE, TRANSFORM)  # noqa: E731
    return inside(ice), inside(stable)


@pytest.mark.parametrize("seed, thres_sigma, gridsize", [(1, 2.0, 60), (2, 2.0, 60), (3, 3.0, 40)])
def test_metrics_agree_with_glaft_within_1_percent(tmp_path, seed, thres_sigma, gridsize):
    vx, vy, ice, stable = velocity_map(seed)
    paths = write_inputs(tmp_path, vx, vy, ice, stable)
    ref_static, ref_strain = glaft_reference(paths, thres_sigma=thres_sigma, kde_gridsize=gridsize)
    on_ice, on_rock = masks(ice, stable)
    ours = glaft_metrics(vx, vy, on_rock, on_ice, (PX, -PX), DT_DAYS, thres_sigma, gridsize)
    st, sr = ours["static_terrain"], ours["along_flow_strain_rate"]
    pairs = {
        "delta_u": (st["delta_u_m_per_yr"], ref_static.metric_static_terrain_x),
        "delta_v": (st["delta_v_m_per_yr"], ref_static.metric_static_terrain_y),
        "incorrect_static": (st["incorrect_match_fraction"], ref_static.outlier_percent),
        "delta_xx": (sr["delta_xx_per_yr"], ref_strain.metric_alongflow_normal),
        "delta_xy": (sr["delta_xy_per_yr"], ref_strain.metric_alongflow_shear),
        "incorrect_strain": (sr["incorrect_match_fraction"], ref_strain.outlier_percent),
    }
    for name, (value, reference) in pairs.items():
        print(f"{name}: icetrack {value:.6g}, glaft {reference:.6g}, rel. diff {abs(value / reference - 1):.2e}")
        assert value == pytest.approx(reference, rel=0.01), name
    peak = [ref_static.kdepeak_x, ref_static.kdepeak_y]
    assert st["kde_peak_m_per_yr"] == pytest.approx(peak, abs=0.01 * st["delta_u_m_per_yr"])
    assert st["points"] == ref_static.xy.shape[1]


def test_coverage_agrees_with_glaft_invalid_share(tmp_path):
    vx, vy, ice, stable = velocity_map(4, gaps=0.12)
    # GLAFT counts invalid pixels by its -9999 nodata value.
    paths = write_inputs(tmp_path, vx, vy, ice, stable, nodata=-9999.0)
    v = glaft.Velocity(vxfile=paths["vx"], vyfile=paths["vy"], nodata=-9999.0)
    with contextlib.redirect_stdout(io.StringIO()):
        v.cal_invalid_pixel_percent()
    on_ice, on_rock = masks(ice, stable)
    ours = glaft_metrics(vx, vy, on_rock, on_ice, (PX, -PX), DT_DAYS)
    assert ours["coverage"] == pytest.approx(1 - v.invalid_percent, rel=0.01)
    assert ours["coverage"] == pytest.approx(0.88, abs=0.02)


def test_static_scatter_tracks_the_noise_and_converts_units():
    """On pure Gaussian noise the ±2σ box of the density peak has a half-width of ~2σ."""
    rng = np.random.default_rng(0)
    sigma = 20.0
    widths = [kde_peak_width(sigma * rng.standard_normal(3000), sigma * rng.standard_normal(3000)) for _ in range(3)]
    ratio = np.mean([w.half_width_x for w in widths] + [w.half_width_y for w in widths]) / sigma
    outside = np.mean([w.outlier_fraction for w in widths])
    print(f"half-width / sigma = {ratio:.3f}, share outside the box {outside:.3f}")
    assert 1.7 <= ratio <= 2.5
    assert outside < 0.1
    vx = np.where(np.ones(SHAPE, bool), sigma * rng.standard_normal(SHAPE), 0).astype(np.float32)
    vy = (sigma * rng.standard_normal(SHAPE)).astype(np.float32)
    m = glaft_metrics(vx, vy, np.ones(SHAPE, bool), np.zeros(SHAPE, bool), (PX, -PX), DT_DAYS)["static_terrain"]
    assert m["delta_u_m_per_day"] == pytest.approx(m["delta_u_m_per_yr"] / 365.25)
    assert m["delta_u_px"] == pytest.approx(m["delta_u_m_per_yr"] * DT_DAYS / 365.25 / PX)


def test_too_few_points_give_nan_not_an_error():
    w = kde_peak_width(np.array([1.0, np.nan]), np.array([2.0, 3.0]))
    assert np.isnan(w.half_width_x) and w.samples == 1
    m = glaft_metrics(np.full(SHAPE, np.nan), np.full(SHAPE, np.nan), np.ones(SHAPE, bool), np.ones(SHAPE, bool),
                      (PX, -PX), DT_DAYS)
    assert np.isnan(m["static_terrain"]["delta_u_m_per_yr"]) and m["coverage"] == 0


@pytest.mark.workflow
def test_demo_quality_json_and_report_page(demo_run):
    """Every pair of the demo run has the GLAFT metrics, the reject shares and the
    stable-ground figures in quality.json, and an HTML page for the report."""
    pairs = sorted(p.parent for p in (demo_run / "results/demo").glob("*/quality.json"))
    assert pairs
    for pair in pairs:
        q = json.loads((pair / "quality.json").read_text())
        st = q["glaft"]["static_terrain"]
        assert st["points"] > 100 and 0 < st["delta_u_m_per_yr"] < 50 and 0 <= st["incorrect_match_fraction"] < 0.2
        assert st["delta_u_px"] < 0.2  # the demo's texture tracks to ~0.1 px or better
        assert np.isfinite(q["glaft"]["along_flow_strain_rate"]["delta_xx_per_yr"])
        assert 0 < q["glaft"]["coverage"] <= 1 and set(q["rejected_fraction"]) >= {"median_test", "direction"}
        assert q["stable_ground"]["corrected"] and len(q["stable_ground"]["nmad_px"]) == 2
        html = (pair / "quality.html").read_text()
        assert "GLAFT static terrain" in html and q["pair"] in html
