"""The two kernels' own promises, in pixels on known shifts: ampcor's 1/32-px zoom, the
coarse-to-fine paths (within the kernel and as a coarse prior pass), the full-search
fallback, strip processing, and the config → kernel parameters mapping."""

import numpy as np
import pytest

from conftest import shifted, textured
from icetrack.track.params import kernel_options, kernel_parameters
from icetrack.track import api, fft_ncc, track_pair
from icetrack.track.ampcor import oversample, zoom_peak
from icetrack.track.ncc import ncc_surfaces
from icetrack.track.upsampled_ncc import fine_ncc_surfaces


def test_ampcor_resolves_finer_than_a_32nd_of_a_pixel():
    """A shift of 0.3 px is not a multiple of 1/32 px: its recovery must not be quantised."""
    ref = textured((256, 256), seed=11)
    sec = shifted(ref, 0.3, -1.7)
    field = track_pair(ref, sec, 32, 6, 16, method="ampcor")
    inner = np.s_[1:-1, 1:-1]
    assert np.nanmedian(np.abs(field.dy[inner] - 0.3)) < 0.02
    assert np.nanmedian(np.abs(field.dx[inner] + 1.7)) < 0.02
    assert np.unique(np.round(field.dy[inner] * 1024)).size > 5  # not all on one 1/32 step


def test_ampcor_oversampling_keeps_the_samples_and_interpolates_between():
    image = textured((32, 32), seed=12).astype(np.float32)
    fine = oversample(image[None, None], 2)[0, 0]
    assert fine.shape == (64, 64)
    np.testing.assert_allclose(fine[::2, ::2], image, atol=1e-4)


def _level2_inputs(seed: int):
    """A 32-px chip and the 56-px window it was cut from, shifted by a sub-pixel vector,
    and the 36-px patch corners around the integer peak (ampcor's level-2 input)."""
    ref = textured((56, 56), seed=seed) * 0.2 + 0.5  # a mean and a gain: the normalisation must remove them
    sec = shifted(ref, 0.35, -0.8)
    chip = ref[12:44, 12:44].astype(np.float32)[None, None]
    window = sec.astype(np.float32)[None, None]
    return chip, window, np.array([10]), np.array([10])


def test_level2_from_spectra_is_exact_on_integer_lags():
    """At whole-pixel lags the matrix-DFT surface is the ordinary NCC (the circular
    correlation of a 32-px chip in a 36-px patch is exact for lags 0 … 4)."""
    chip, window, top, left = _level2_inputs(21)
    fine = fine_ncc_surfaces(chip, window, top, left, 36, 2)
    integer, *_ = ncc_surfaces(chip, window[:, :, 10:46, 10:46])
    assert fine.shape == (1, 9, 9)
    np.testing.assert_allclose(fine[:, ::2, ::2], integer, atol=1e-4)


def test_level2_from_spectra_matches_ampcor_oversampling():
    """Between whole pixels it agrees with ampcor's own level 2 (chip and patch
    oversampled ×2 by FFT, then NCC) and puts the peak on the same 0.5-px lag."""
    chip, window, top, left = _level2_inputs(22)
    fine = fine_ncc_surfaces(chip, window, top, left, 36, 2)[0]
    ampcor_surface, sy, sx, _, _ = ncc_surfaces(oversample(chip, 2), oversample(window[:, :, 10:46, 10:46], 2))
    np.testing.assert_allclose(fine, ampcor_surface[0], atol=0.03)  # measured 0.009–0.023
    assert np.unravel_index(fine.argmax(), fine.shape) == (sy[0], sx[0])


def test_zoom_finds_a_known_sub_sample_peak():
    """A Gaussian peak at (5.3, 4.65) samples on an 11×11 surface, zoomed ×16 (a sampled
    Gaussian is not band-limited, so the windowed sinc is off by ~0.015 sample)."""
    y, x = np.mgrid[0:11, 0:11]
    surface = np.exp(-((y - 5.3) ** 2 + (x - 4.65) ** 2) / (2 * 1.5**2))[None]
    zy, zx = zoom_peak(surface, np.array([5]), np.array([5]), 16)
    assert abs(zy[0] - 5.3) < 0.02 and abs(zx[0] - 4.65) < 0.02  # samples; level-2 samples are 0.5 px


@pytest.mark.parametrize("method", ["fft_ncc", "ampcor"])
def test_coarse_prior_pass_reaches_beyond_the_fine_search(method):
    """A 13 px shift with ±14 px: the coarse pass (±8 px on 2× images) finds it, the fine
    pass only searches ±3 px around it, and both recover the sub-pixel shift."""
    ref = textured((384, 384), seed=13)
    sec = shifted(ref, -13.4, 6.2)
    field = track_pair(ref, sec, 32, 14, 16, method=method, coarse_prior=True)
    inner = np.s_[2:-2, 2:-2]
    assert np.isfinite(field.dx[inner]).mean() > 0.95
    assert np.nanmedian(np.abs(field.dy[inner] + 13.4)) < 0.05
    assert np.nanmedian(np.abs(field.dx[inner] - 6.2)) < 0.05


def test_full_search_fallback_and_coarse_to_fine_agree():
    ref = textured((256, 256), seed=14)
    sec = shifted(ref, 4.6, -7.3)
    fast = track_pair(ref, sec, 32, 10, 16)
    full = track_pair(ref, sec, 32, 10, 16, kernel_options={"coarse_to_fine": False})
    inner = np.s_[1:-1, 1:-1]
    np.testing.assert_allclose(fast.dx[inner], full.dx[inner], atol=1e-3)
    np.testing.assert_allclose(fast.dy[inner], full.dy[inner], atol=1e-3)


def test_weak_chips_fall_back_to_the_full_search(monkeypatch):
    """When the coarse pass is sure of nothing (threshold above any NCC), every chip is
    searched at full resolution, and the offsets are still right."""
    monkeypatch.setattr(fft_ncc, "FALLBACK_PEAK", 1.1)
    ref = textured((192, 192), seed=15)
    sec = shifted(ref, -2.2, 5.5)
    field = track_pair(ref, sec, 32, 8, 16)
    assert np.nanmedian(np.abs(field.dx[1:-1, 1:-1] - 5.5)) < 0.03


def test_tiles_do_not_change_the_result(monkeypatch):
    ref = textured((256, 200), seed=16)
    sec = shifted(ref, 1.4, 2.6)
    ref[40:70, 30:90] = np.nan  # a cloud across a strip boundary
    whole = track_pair(ref, sec, 32, 6, 16)
    monkeypatch.setattr(api, "STRIP_ROWS", 1)
    monkeypatch.setattr(api, "TILE_COLS", 3)
    strips = track_pair(ref, sec, 32, 6, 16)
    np.testing.assert_array_equal(np.isnan(whole.dx), np.isnan(strips.dx))
    # Tile means fill a cloud differently: chips touching it may differ by noise only.
    np.testing.assert_allclose(whole.dx, strips.dx, atol=0.02, equal_nan=True)


def test_known_shift_is_located_at_chip_centres():
    """Georeferencing pinned on the tracked data: a field that moves only the image's lower
    half gives the jump between the grid rows whose chip centres straddle the edge."""
    ref = textured((256, 256), seed=17)
    moved = shifted(ref, 0.0, 3.0)
    edge = 136  # first image row of the moving half
    sec = np.where(np.arange(256)[:, None] >= edge, moved, ref)
    field = track_pair(ref, sec, 32, 6, 8)
    centres = np.arange(field.grid.n_rows) * 8 + 16  # chip centre rows (pixel-is-area)
    dx = np.nanmedian(field.dx[:, 2:-2], axis=1)
    assert np.all(np.abs(dx[centres + 16 <= edge]) < 0.05)  # whole chip above the edge
    assert np.all(np.abs(dx[centres - 16 >= edge] - 3.0) < 0.05)  # whole chip below


def test_ampcor_config_maps_to_its_windows():
    tracking = {"method": "ampcor", "chip_px": 32, "step_px": 8, "search_px": "auto", "max_speed_m_per_yr": 500,
                "ampcor": {"reference_window_px": 64, "search_window_px": 104, "skip_px": 64,
                           "oversampling_factor": 16, "coarse_to_fine": True}}
    p = kernel_parameters(tracking, 40, 10.0)
    assert (p["chip_px"], p["search_px"], p["step_px"]) == (64, 20, 64)
    assert p["ampcor"]["oversampling_factor"] == 16
    assert kernel_options(p) == {"oversampling_factor": 16, "coarse_to_fine": True}
    fft = kernel_parameters({**tracking, "method": "fft_ncc", "fft_ncc": {"lk_iterations": 2}}, 40, 10.0)
    assert (fft["chip_px"], fft["step_px"]) == (32, 8) and kernel_options(fft) == {"lk_iterations": 2}


def test_benchmark_cli_writes_every_case_and_method(tmp_path, capsys):
    """The benchmark's JSON contract, on a tiny run; accuracy in px, no timing assertion."""
    import json

    from icetrack.bench.kernels import main

    out = tmp_path / "bench.json"
    main(["--size", "128", "--repeats", "1", "--json", str(out)])
    results = json.loads(out.read_text())
    assert set(results) == {"uniform", "shear", "radiometric"}
    for name, case in results.items():
        assert set(case) == {"fft_ncc", "ampcor", "opencv", "skimage"}
        for figures in case.values():
            assert set(figures) == {"chips_per_s", "rmse_px", "bias_px", "outlier_frac"}
        for method in ("fft_ncc", "ampcor"):
            assert case[method]["outlier_frac"] == 0
            # On a 128-px image the 9-px shear deforms each chip by ~2 px: everyone is at ~0.17 px.
            assert case[method]["rmse_px"] < (0.25 if name == "shear" else 0.05), (name, method)
    assert "(ratio to opencv)" in capsys.readouterr().out


def test_reference_velocity_map_centres_the_search(tmp_path):
    """A coarse reference map (m/yr, 100 m pixels) converted to px over the pair's 36.5
    days centres a ±3 px search on a (9.2, −10.6) px shift of a 10 m image."""
    from affine import Affine

    from icetrack.common.rasters import write_geotiff
    from icetrack.track import point_grid
    from icetrack.track.prior import prior_from_velocity

    image_transform = Affine(10.0, 0, 500_000.0, 0, -10.0, 4_000_000.0)
    years = 36.525 / 365.25
    vx, vy = -10.6 * 10 / years, -9.2 * 10 / years  # east −106 m, north −92 m (rows run south)
    coarse = Affine(100.0, 0, 499_000.0, 0, -100.0, 4_001_000.0)
    for name, value in (("vx", vx), ("vy", vy)):
        write_geotiff(tmp_path / f"{name}.tif", [np.full((60, 60), value, np.float32)], coarse, "EPSG:32718")
    ref = textured((256, 256), seed=18)
    sec = shifted(ref, 9.2, -10.6)
    grid = point_grid(ref.shape, 32, 16)
    prior_dx, prior_dy = prior_from_velocity(str(tmp_path / "vx.tif"), str(tmp_path / "vy.tif"), grid,
                                             image_transform, "EPSG:32718", 36.525)
    np.testing.assert_allclose(prior_dx, -10.6, atol=1e-3)
    np.testing.assert_allclose(prior_dy, 9.2, atol=1e-3)
    field = track_pair(ref, sec, 32, 3, 16, prior_dx=prior_dx, prior_dy=prior_dy)
    assert np.nanmedian(np.abs(field.dx[2:-2, 2:-2] + 10.6)) < 0.05
    assert np.nanmedian(np.abs(field.dy[2:-2, 2:-2] - 9.2)) < 0.05


def test_prior_config_goes_to_kernel_json():
    tracking = {"method": "fft_ncc", "chip_px": 32, "step_px": 8, "search_px": 6, "max_speed_m_per_yr": 500,
                "prior": {"reference_vx": "vx.tif", "reference_vy": "vy.tif"}}
    assert kernel_parameters(tracking, 40, 10.0)["prior"] == {"reference_vx": "vx.tif", "reference_vy": "vy.tif"}
    assert "prior" not in kernel_parameters({**tracking, "prior": {"reference_vx": "", "reference_vy": ""}}, 40, 10.0)
    with pytest.raises(ValueError, match="tracking.prior: give both"):
        kernel_parameters({**tracking, "prior": {"reference_vx": "vx.tif", "reference_vy": ""}}, 40, 10.0)


def test_two_band_images_track_as_one_vector_image():
    """An orientation-like pair (cos, sin of the gradient direction) as (2, rows, cols)
    stacks: both bands correlate together and give the shift; NaN in one band masks."""
    from scipy import ndimage

    base = textured((224, 224), seed=19)
    angle = np.arctan2(ndimage.sobel(base, 0), ndimage.sobel(base, 1))
    ref = np.stack([np.cos(angle), np.sin(angle)])
    sec = np.stack([shifted(band, -1.3, 2.4) for band in ref])
    ref[1, :64] = np.nan  # missing in one band only: the point is missing
    field = track_pair(ref, sec, 32, 6, 16)
    assert np.isnan(field.dx[:2]).all()
    assert np.nanmedian(np.abs(field.dx[4:-1, 1:-1] - 2.4)) < 0.05
    assert np.nanmedian(np.abs(field.dy[4:-1, 1:-1] + 1.3)) < 0.05
