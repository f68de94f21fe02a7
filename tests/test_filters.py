"""Step 4 filters: masks survive without ringing, orientation images are what Fahnestock
et al. (2016) define, and each filter beats `none` on a pair with a radiometric change."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import ndimage

from conftest import textured
from icetrack.filter import texture as filters
from icetrack.postprocess.velocity import offsets_to_velocity
from icetrack.track import track_pair

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())
TWO_D = [m for m in sorted(filters.FILTERS) if m not in filters.MULTIBAND]


def with_hole(seed=0):
    img = textured((96, 96), seed=seed) * 100 + 1000
    holed = img.copy()
    holed[40:50, 40:50] = np.nan
    return img, holed


@pytest.mark.parametrize("method", sorted(filters.FILTERS))
def test_filters_keep_nan_and_shape(method):
    _, img = with_hole()
    out = filters.apply_filter(img, method, **CONFIG["filter"].get(method, {}))
    expected = (2, 96, 96) if method in filters.MULTIBAND else (96, 96)
    assert out.shape == expected and out.dtype == np.float32
    assert np.isnan(out[..., 40:50, 40:50]).all()
    assert np.isfinite(out[..., :30, :]).all()
    assert len(filters.band_descriptions(method)) == (out.shape[0] if out.ndim == 3 else 1)


@pytest.mark.parametrize("method", TWO_D)
def test_masked_pixels_do_not_ring_or_leak(method):
    """Next to a cloud the filter sees fewer pixels, but no step: values stay within the
    range the filter gives on the same texture without the cloud, and far from it the
    output is unchanged."""
    params = CONFIG["filter"].get(method, {})
    img, holed = with_hole()
    ref = filters.apply_filter(img, method, **params)
    out = filters.apply_filter(holed, method, **params)
    hole = np.isnan(holed)
    dist = ndimage.distance_transform_edt(~hole)
    near = (dist > 0) & (dist <= 3)
    far = dist > 25
    scale = np.nanstd(ref)
    assert np.abs(out[far] - ref[far]).max() <= 1e-3 * scale
    assert np.nanmax(np.abs(out[near])) <= 1.5 * np.abs(ref).max()
    # No halo: the filtered texture next to the hole still matches the unmasked one.
    assert np.corrcoef(out[near], ref[near])[0, 1] > 0.8


def test_orientation_is_unit_gradient_direction_and_blind_to_gain_and_offset():
    img, holed = with_hole(1)
    o = filters.orientation(holed)
    gy, gx = np.gradient(img)
    theta = np.arctan2(o[1], o[0])
    inner = np.isfinite(theta) & (np.hypot(o[0], o[1]) > 0)
    assert np.allclose(np.hypot(o[0], o[1])[inner], 1, atol=1e-5)
    assert np.allclose(np.angle(np.exp(1j * (theta - np.arctan2(gy, gx))))[inner], 0, atol=1e-4)
    # Gain and offset change nothing; a gamma change (monotonic) barely moves the angles.
    assert np.allclose(filters.orientation(3.0 * holed + 500), o, atol=1e-5, equal_nan=True)
    gamma = filters.orientation(((holed - np.nanmin(holed)) / (np.nanmax(holed) - np.nanmin(holed)) + 0.1) ** 0.5)
    dtheta = np.angle(np.exp(1j * (np.arctan2(gamma[1], gamma[0]) - theta)))[inner]
    assert np.degrees(np.median(np.abs(dtheta))) < 3
    # Zero where there is no gradient (saturated snow) or the stencil touches the mask.
    flat = np.full((20, 20), 4095.0)
    assert (filters.orientation(flat) == 0).all()
    ring = ndimage.binary_dilation(np.isnan(holed)) & ~np.isnan(holed)
    assert (o[:, ring] == 0).all()


def test_unknown_filter_and_bad_parameters_are_named():
    with pytest.raises(ValueError, match="filter.method 'sobel' is unknown"):
        filters.apply_filter(np.zeros((8, 8)), "sobel")
    with pytest.raises(ValueError, match="filter.wallis: bad parameters"):
        filters.apply_filter(np.zeros((8, 8)), "wallis", sigma_px=2)


# --- Filter gains on a pair with a radiometric change --------------------------------

def smooth_noise(shape, scale_px, seed):
    f = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), scale_px)
    return f / f.std()


def radiometric_pair(size=256, seed=0):
    """Two dates of one texture moved by a known sheared field, seen under different
    illumination: a shading field (3× the texture's contrast, ~10 px features: shadows,
    haze, sun angle on undulating ice) and a contrast that varies across the scene, both
    different on each date, plus a global gain/offset and sensor noise.
    Returns (ref, sec, true dx, true dy) with offsets in px (+x columns, +y rows)."""
    rng = np.random.default_rng(seed)
    texture = textured((size, size), seed=seed, blur=1.5)
    rows, cols = np.mgrid[0:size, 0:size].astype(float)
    true_dx = 2.0 + 2.0 * rows / size
    true_dy = np.full((size, size), -1.0)
    moved = ndimage.map_coordinates(texture, [rows - true_dy, cols - true_dx], order=3, mode="reflect")

    def observe(tex, date):
        shading = smooth_noise(tex.shape, 10, 100 + date)
        contrast = np.exp(0.5 * smooth_noise(tex.shape, 10, 200 + date))
        return 1000 + 100 * (contrast * tex + 3.0 * shading) + 5 * rng.standard_normal(tex.shape)

    return observe(texture, 1), 1.7 * observe(moved, 2) + 300, true_dx, true_dy


def track_and_score(ref, sec, true_dx, true_dy):
    """(valid share, RMSE px, median error px) after the pipeline's own masks."""
    chip, step = 32, 8
    field = track_pair(ref, sec, chip_px=chip, search_px=8, step_px=step)
    centre = np.arange(field.dx.shape[0]) * step + chip // 2
    tdx, tdy = true_dx[np.ix_(centre, centre)], true_dy[np.ix_(centre, centre)]
    everywhere = np.ones(field.dx.shape, bool)
    vel = offsets_to_velocity(field.dx, field.dy, field.peak, field.snr, field.sigma_x, field.sigma_y, (10.0, -10.0),
                              36.525, everywhere, ~everywhere, CONFIG["postprocess"])
    valid = np.isfinite(vel.vx) & ~vel.interpolated
    err = np.hypot(field.dx - tdx, field.dy - tdy)[valid]
    return float(valid.mean()), float(np.sqrt(np.mean(err**2))), float(np.median(err))


@pytest.fixture(scope="module")
def pair():
    return radiometric_pair()


@pytest.fixture(scope="module")
def baseline(pair):
    return track_and_score(*pair)


def _multiband_tracking_available() -> bool:
    try:
        track_pair(np.zeros((2, 48, 48), np.float32), np.zeros((2, 48, 48), np.float32), chip_px=16, search_px=2,
                   step_px=16)
    except (ValueError, TypeError, IndexError):
        return False
    return True


@pytest.mark.parametrize("method", [m for m in sorted(filters.FILTERS) if m != "none"])
def test_each_filter_beats_none_under_radiometric_change(method, pair, baseline):
    if method in filters.MULTIBAND and not _multiband_tracking_available():
        pytest.skip("track_pair does not take (B, H, W) images yet")
    ref, sec, true_dx, true_dy = pair
    params = CONFIG["filter"].get(method, {})
    valid, rmse, median = track_and_score(filters.apply_filter(ref, method, **params),
                                          filters.apply_filter(sec, method, **params), true_dx, true_dy)
    b_valid, b_rmse, b_median = baseline
    print(f"{method}: valid {valid:.3f} (none {b_valid:.3f}), RMSE {rmse:.3f} px (none {b_rmse:.3f}), "
          f"median {median:.3f} px (none {b_median:.3f})")
    assert valid >= b_valid + 0.2
    assert rmse <= 0.5 * b_rmse and median <= 0.5 * b_median


@pytest.mark.workflow
def test_filter_step_writes_orientation_as_two_band_geotiff(demo_run, tmp_path):
    """The filter rule with `method: orientation` writes (cos, sin) as two float32 bands
    on the scene's grid, NaN where the scene is missing (the demo cloud), and the
    workflow runs through with it (only the filter step onward reruns)."""
    import json
    import shutil

    import rasterio

    from conftest import copy_workflow, snakemake

    work = copy_workflow(tmp_path)
    for sub in ("results", "resources", ".snakemake"):  # copy2 keeps mtimes: nothing upstream reruns
        shutil.copytree(demo_run / sub, work / sub, ignore=shutil.ignore_patterns("conda*", "log"))
    config = (work / "config/config.yaml").read_text().replace("method: gaussian_hp", "method: orientation")
    (work / "orientation.yaml").write_text(config)
    target = "results/demo/filtered/20240325.tif"  # the cloudy date
    # (A single file as target cannot be asked for: fetch's params read the pairs checkpoint.)
    snakemake(work, "--configfile", "orientation.yaml")
    assert json.loads((work / "results/demo/20240214_20240325/quality.json").read_text())["points"] > 0
    with rasterio.open(work / target) as src, rasterio.open(work / "results/demo/scenes/20240325.tif") as scene:
        assert src.count == 2 and src.dtypes == ("float32", "float32")
        assert src.transform == scene.transform and src.crs == scene.crs
        assert "cos" in src.descriptions[0] and "sin" in src.descriptions[1]
        cos, sin, image = src.read(1), src.read(2), scene.read(1)
    missing = np.isnan(image)
    assert missing.any() and np.isnan(cos[missing]).all() and np.isnan(sin[missing]).all()
    norm = np.hypot(cos, sin)[~missing]
    assert np.mean(np.abs(norm - 1) < 1e-4) > 0.95  # unit vectors, 0 only at cloud edges
