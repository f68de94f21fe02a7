"""Step 6 on generated offsets with a known field: outlier masks, stable-ground bias,
gap filling, direction bound and error estimates, with the issue's acceptance numbers."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from icetrack.postprocess.velocity import (REASONS, direction_deviation_deg, fill_small_holes, normalised_median_residual,
                                  offsets_to_velocity)

REPO = Path(__file__).resolve().parents[1]
# The shipped defaults: the acceptance numbers must hold with the config users get.
POST = yaml.safe_load((REPO / "config/config.yaml").read_text())["postprocess"]
PIXEL = (10.0, -10.0)  # m, north-up image
DT_DAYS = 40.0
M_PER_YR_PER_PX = 10.0 / (DT_DAYS / 365.25)


def glacier_field(shape=(80, 80), vmax_px=6.0):
    """True offsets (px, +x east/columns, +y rows) of an elliptical glacier flowing at 25°,
    speed vmax·(1 − r²) inside (continuous at the margin, as on real glaciers), 0 outside."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    cy, cx = shape[0] / 2, shape[1] / 2
    a = np.deg2rad(25)
    along = (cols - cx) * np.cos(a) - (rows - cy) * np.sin(a)
    across = (cols - cx) * np.sin(a) + (rows - cy) * np.cos(a)
    r2 = (along / 32) ** 2 + (across / 14) ** 2
    speed = vmax_px * np.clip(1 - r2, 0, None)
    return speed * np.cos(a), -speed * np.sin(a), r2 < 1


def tracked(seed, sigma_px=0.08, bias_px=(0.0, 0.0), outlier_share=0.0, search_px=10.0):
    """Offsets as a tracker returns them: truth + bias + Gaussian noise, and a share of
    wrong matches drawn uniformly over the search window (peak and SNR as good ones,
    so only the field-based tests can find them)."""
    rng = np.random.default_rng(seed)
    tdx, tdy, glacier = glacier_field()
    shape = tdx.shape
    dx = tdx + bias_px[0] + sigma_px * rng.standard_normal(shape)
    dy = tdy + bias_px[1] + sigma_px * rng.standard_normal(shape)
    bad = rng.random(shape) < outlier_share
    dx[bad] = rng.uniform(-search_px, search_px, bad.sum())
    dy[bad] = rng.uniform(-search_px, search_px, bad.sum())
    peak = np.clip(0.6 + 0.1 * rng.standard_normal(shape), 0.25, 0.99)
    snr = 5 + 5 * rng.random(shape)
    sigma = np.full(shape, sigma_px)
    return dict(dx=dx, dy=dy, peak=peak, snr=snr, sigma_x=sigma, sigma_y=sigma.copy()), (tdx, tdy), glacier, bad


def run(o, glacier, config=POST, reference=None):
    return offsets_to_velocity(o["dx"], o["dy"], o["peak"], o["snr"], o["sigma_x"], o["sigma_y"], PIXEL, DT_DAYS,
                               glacier, ~glacier, config, reference=reference)


def to_px(vel):
    """Velocity back to offsets in px (+y rows, i.e. south)."""
    return vel.vx / M_PER_YR_PER_PX, -vel.vy / M_PER_YR_PER_PX


def test_planted_outliers_found_with_95_recall_losing_at_most_2_percent_of_good_points():
    caught = planted = lost = good = 0
    for seed in range(4):
        o, _, glacier, bad = tracked(seed, bias_px=(0.3, -0.2), outlier_share=0.05)
        vel = run(o, glacier)
        rejected = vel.reject_reason > 0  # rejected, even if later filled as a small hole
        caught += int(rejected[bad].sum())
        planted += int(bad.sum())
        lost += int(rejected[~bad].sum())
        good += int((~bad).sum())
    recall, lost_share = caught / planted, lost / good
    print(f"recall {recall:.4f} ({planted} planted), good points lost {lost_share:.4f}")
    assert recall >= 0.95
    assert lost_share <= 0.02


def test_planted_stable_ground_bias_removed_to_002_px():
    o, (tdx, tdy), glacier, _ = tracked(1, sigma_px=0.1, bias_px=(0.3, -0.3), outlier_share=0.05)
    vel = run(o, glacier)
    sg = vel.stats["stable_ground"]
    assert sg["corrected"] and sg["points"] > 1000
    assert sg["median_offset_px"] == pytest.approx([0.3, -0.3], abs=0.02)
    px, py = to_px(vel)
    measured = ~vel.interpolated & np.isfinite(px)
    residual_rock = (np.median(px[measured & ~glacier]), np.median(py[measured & ~glacier]))
    residual_ice = (np.median((px - tdx)[measured & glacier]), np.median((py - tdy)[measured & glacier]))
    print(f"residual bias rock {residual_rock}, ice {residual_ice} px")
    assert np.abs(residual_rock).max() <= 0.02 and np.abs(residual_ice).max() <= 0.02
    assert sg["nmad_px"] == pytest.approx([0.1, 0.1], rel=0.15)  # the noise we planted


@pytest.mark.parametrize("sigma_px", [0.08, 0.15])
def test_holes_up_to_limit_filled_within_tracking_error_larger_stay_empty(sigma_px):
    assert POST["fill_max_hole_points"] == 9
    o, (tdx, tdy), glacier, _ = tracked(2, sigma_px=sigma_px)
    holes = {  # (row, col, height, width) on the glacier; sizes 1..9 points, then 16
        "1": (40, 40, 1, 1), "2": (40, 30, 2, 1), "4": (36, 50, 2, 2), "6": (44, 22, 2, 3),
        "9a": (34, 36, 3, 3), "9b": (42, 44, 3, 3), "16": (38, 58, 4, 4),
    }
    for r, c, h, w in holes.values():
        o["dx"][r : r + h, c : c + w] = np.nan
        o["dy"][r : r + h, c : c + w] = np.nan
    o["dx"][0:2, 0:2] = np.nan  # a small hole off the ice: stays empty
    vel = run(o, glacier)
    px, py = to_px(vel)
    err = np.hypot(px - tdx, py - tdy)
    filled = vel.interpolated
    measured_ice = glacier & np.isfinite(px) & ~filled
    fill_rmse = float(np.sqrt(np.mean(err[filled] ** 2)))
    tracking_rmse = float(np.sqrt(np.mean(err[measured_ice] ** 2)))  # local tracking error
    print(f"sigma {sigma_px}: {filled.sum()} filled, RMSE {fill_rmse:.3f} px vs tracking {tracking_rmse:.3f} px, "
          f"max {err[filled].max():.3f} px")
    assert filled.sum() == 1 + 2 + 4 + 6 + 9 + 9
    assert fill_rmse <= tracking_rmse
    assert err[filled].max() <= 3 * sigma_px * np.sqrt(2)  # no filled point is an outlier
    r, c, h, w = holes["16"]
    assert np.isnan(vel.vx[r : r + h, c : c + w]).all() and not filled[r : r + h, c : c + w].any()
    assert np.isnan(vel.vx[0:2, 0:2]).all()
    # Filled points carry an error no smaller than their neighbours' and are flagged.
    assert (vel.vx_error[filled] > 0).all() and vel.stats["interpolated_points"] == filled.sum()


def test_error_estimate_is_calibrated_on_ice():
    """|error| ≤ 1-sigma error for ~68 % of points if the estimate is honest."""
    o, (tdx, tdy), glacier, _ = tracked(3, sigma_px=0.1, bias_px=(0.2, 0.1))
    rng = np.random.default_rng(3)
    worse = rng.random(glacier.shape) < 0.2  # a fifth of the matches are 3× noisier...
    o["dx"][worse] += 0.3 * rng.standard_normal(worse.sum())
    o["sigma_x"][worse] = np.hypot(0.1, 0.3)  # ...and the correlation peak says so
    vel = run(o, glacier)
    px, _ = to_px(vel)
    ok = glacier & np.isfinite(px) & ~vel.interpolated
    within = np.abs(px - tdx)[ok] <= vel.vx_error[ok] / M_PER_YR_PER_PX
    within_worse = np.abs(px - tdx)[ok & worse] <= vel.vx_error[ok & worse] / M_PER_YR_PER_PX
    print(f"share within 1 sigma: all {within.mean():.3f}, noisy matches {within_worse.mean():.3f}")
    assert 0.6 <= within.mean() <= 0.8
    assert 0.55 <= within_worse.mean() <= 0.85
    assert np.isfinite(vel.v_error[ok]).all()


def test_direction_bound_against_reference_field():
    o, (tdx, tdy), glacier, _ = tracked(4)
    # A coherent 3×3 clump flowing sideways: the median test cannot see it, the
    # reference flow can.
    rows, cols = slice(38, 41), slice(36, 39)
    o["dx"][rows, cols], o["dy"][rows, cols] = -tdy[rows, cols], tdx[rows, cols]
    config = {**POST, "direction": {**POST["direction"], "max_deviation_deg": 45.0, "min_speed_m_per_yr": 20.0}}
    reference = (tdx * M_PER_YR_PER_PX, -tdy * M_PER_YR_PER_PX)
    without = run(o, glacier, config)
    with_ref = run(o, glacier, config, reference=reference)
    assert (without.reject_reason[rows, cols] == 0).sum() >= 5
    clump = with_ref.reject_reason[rows, cols]
    assert (clump > 0).all() and ((clump & REASONS["direction"]) > 0).sum() >= 5  # corners: median test first
    assert with_ref.stats["direction_test"] and not without.stats["direction_test"]
    slow = np.hypot(tdx, tdy) * M_PER_YR_PER_PX < 20
    assert not (with_ref.reject_reason[slow] & REASONS["direction"]).any()  # noise has no direction
    n_direction = int(((with_ref.reject_reason & REASONS["direction"]) > 0).sum())
    assert n_direction == ((clump & REASONS["direction"]) > 0).sum()  # no good point lost to it
    assert with_ref.stats["rejected_fraction"]["direction"] == pytest.approx(n_direction / glacier.size)


def test_direction_deviation():
    assert direction_deviation_deg(np.array([1.0, 0, -1]), np.array([0.0, 1, 0]), np.ones(3), np.zeros(3)) == \
        pytest.approx([0, 90, 180])


def test_speed_bound_clumps_and_reject_shares_reported():
    o, _, glacier, _ = tracked(5)
    o["dx"][10, 10] = 30.0  # 2740 m/yr: impossible here
    o["peak"][60:70, 60:70] = 0.05
    o["peak"][64, 64] = 0.9  # an island of 1 good point in rejected ones: a clump
    o["snr"][5, 70] = 1.0
    vel = run(o, glacier)
    rr = vel.reject_reason
    assert rr[10, 10] & (REASONS["speed_limit"] | REASONS["median_test"])
    assert rr[64, 64] == REASONS["small_clump"] and rr[60, 60] == REASONS["low_correlation"]
    assert rr[5, 70] == REASONS["low_snr"]
    shares = vel.stats["rejected_fraction"]
    assert shares["low_correlation"] == pytest.approx(99 / rr.size)
    assert set(shares) == set(REASONS) and vel.stats["rejected_points"]["small_clump"] >= 1
    assert sum(vel.stats["rejected_points"].values()) == int((rr > 0).sum())


def test_postprocess_removes_outliers_bias_and_fills_small_holes():
    rng = np.random.default_rng(0)
    shape = (40, 40)
    glacier = np.zeros(shape, bool)
    glacier[10:30, 10:30] = True
    stable = ~glacier
    dx = np.where(glacier, 2.0, 0.0) + 0.3 + 0.02 * rng.standard_normal(shape)  # 0.3 px co-registration bias
    dy = np.zeros(shape) + 0.02 * rng.standard_normal(shape)
    dx[15, 15] = 9.0  # an outlier
    dx[20:22, 20:22] = np.nan  # a small hole on the glacier
    dx[0:12, 30:40] = np.nan  # a large gap stays empty
    ones = np.ones(shape)
    vel = offsets_to_velocity(dx, dy, 0.9 * ones, 10 * ones, 0.05 * ones, 0.05 * ones, (10.0, -10.0), 36.525,
                              glacier, stable, POST)
    assert np.isfinite(vel.vx[15, 15]) and vel.interpolated[15, 15]  # rejected, then filled as a 1-point hole
    assert vel.stats["rejected_fraction"]["median_test"] > 0
    assert vel.stats["stable_ground"]["median_offset_px"][0] == pytest.approx(0.3, abs=0.01)
    assert np.nanmedian(vel.vx[stable]) == pytest.approx(0.0, abs=0.2)
    assert np.nanmedian(vel.vx[glacier]) == pytest.approx(200.0, abs=1.0)  # 2 px × 10 m / 0.1 yr
    assert vel.interpolated[20:22, 20:22].all()
    assert np.isnan(vel.vx[2:10, 32:40]).all()
    assert np.isfinite(vel.vx_error[glacier]).all() and (vel.vx_error[glacier] > 0).all()


def test_no_stable_ground_means_no_correction_and_unknown_floor():
    o, _, glacier, _ = tracked(6, bias_px=(0.3, 0.0))
    vel = offsets_to_velocity(o["dx"], o["dy"], o["peak"], o["snr"], o["sigma_x"], o["sigma_y"], PIXEL, DT_DAYS,
                              glacier, np.zeros_like(glacier), POST)
    sg = vel.stats["stable_ground"]
    assert not sg["corrected"] and sg["median_offset_px"] == [0.0, 0.0] and np.isnan(sg["nmad_px"][0])
    ok = np.isfinite(vel.vx)
    assert np.allclose(vel.vx_error[ok], 0.08 * M_PER_YR_PER_PX, rtol=1e-4)  # the correlation error alone


def test_median_test_flags_a_single_outlier():
    u = np.ones((9, 9))
    u[4, 4] = 5.0
    r = normalised_median_residual(u, eps=0.1)
    assert r[4, 4] > 10 and np.nanmax(np.delete(r.ravel(), 40)) < 1


def test_fill_small_holes_never_fills_large_or_outside():
    f = np.ones((20, 20))
    f[5:7, 5:7] = np.nan
    f[10:18, 10:18] = np.nan
    allowed = np.ones_like(f, bool)
    out, filled = fill_small_holes(f, 9, allowed)
    assert filled[5:7, 5:7].all() and np.isnan(out[10:18, 10:18]).all()
    out2, filled2 = fill_small_holes(f, 9, np.zeros_like(allowed))
    assert not filled2.any()


@pytest.mark.workflow
def test_reference_flow_file_drives_the_direction_test(demo_run, tmp_path):
    """postprocess_pair reads reference vx/vy GeoTIFFs (here the demo's true field) onto
    the point grid; the true field never contradicts good matches, and a missing file is
    named in the error."""
    from icetrack.track.offsets_file import read_offsets
    from icetrack.postprocess.pair import postprocess_pair

    pair = sorted((demo_run / "results/demo").glob("*/offsets.nc"))[0].parent
    offsets = read_offsets(pair / "offsets.nc")
    masks = str(demo_run / "results/demo/masks.tif")
    truth = demo_run / "resources/demo"
    config = {**POST, "direction": {**POST["direction"], "reference_vx": str(truth / "truth_vx.tif"),
                                    "reference_vy": str(truth / "truth_vy.tif")}}
    ds, quality = postprocess_pair(offsets, masks, config)
    plain_ds, plain = postprocess_pair(offsets, masks, POST)
    assert quality["direction_test"] and not plain["direction_test"]
    assert quality["rejected_fraction"]["direction"] <= 0.005
    assert quality["valid_fraction"] >= plain["valid_fraction"] - 0.005
    config["direction"]["reference_vy"] = str(tmp_path / "missing_vy.tif")
    with pytest.raises(ValueError, match="missing_vy.tif"):
        postprocess_pair(offsets, masks, config)
