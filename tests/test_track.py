"""Tracking kernels against known displacements (errors asserted in pixels)."""

import numpy as np
import pytest
from affine import Affine

from conftest import shifted, textured
from icetrack.track import KERNELS, point_grid, track_pair


@pytest.mark.parametrize("method", sorted(KERNELS))
@pytest.mark.parametrize("shift", [(0.0, 0.0), (1.3, -2.7), (-4.25, 0.5), (0.37, 3.81)])
def test_uniform_subpixel_shift_is_recovered(method, shift):
    ref = textured((320, 320), seed=1)
    sec = shifted(ref, *shift)
    field = track_pair(ref, sec, chip_px=32, search_px=8, step_px=16, method=method)
    inner = np.s_[1:-1, 1:-1]  # Fourier shift wraps at the borders
    assert np.nanmedian(np.abs(field.dy[inner] - shift[0])) < 0.03
    assert np.nanmedian(np.abs(field.dx[inner] - shift[1])) < 0.03
    assert np.isfinite(field.dx[inner]).mean() > 0.99
    assert np.nanmedian(field.peak[inner]) > 0.9


def test_identical_images_give_zero_not_nan():
    ref = textured((128, 128), seed=2)
    field = track_pair(ref, ref.copy(), chip_px=32, search_px=6, step_px=16)
    assert np.isfinite(field.dx).all()
    assert np.median(np.abs(field.dx)) < 0.03 and np.median(np.abs(field.dy)) < 0.03
    assert np.abs(field.dx).max() < 0.2 and np.abs(field.dy).max() < 0.2


def test_radiometric_gain_and_offset_do_not_change_offsets():
    ref = textured((192, 192), seed=3)
    sec = 2.5 * shifted(ref, 0.6, -1.4) + 40.0
    field = track_pair(ref, sec, chip_px=32, search_px=6, step_px=16)
    assert np.nanmedian(np.abs(field.dx[1:-1, 1:-1] + 1.4)) < 0.03


def test_prior_offsets_centre_the_search():
    ref = textured((256, 256), seed=4)
    sec = shifted(ref, 9.2, -10.6)
    grid = point_grid(ref.shape, 32, 16)
    prior = np.ones((grid.n_rows, grid.n_cols))
    field = track_pair(ref, sec, 32, 3, 16, prior_dx=-10 * prior, prior_dy=9 * prior)
    assert np.nanmedian(np.abs(field.dx[2:-2, 2:-2] + 10.6)) < 0.05
    assert np.nanmedian(np.abs(field.dy[2:-2, 2:-2] - 9.2)) < 0.05


def test_clouds_are_not_tracked():
    ref = textured((192, 192), seed=5)
    sec = shifted(ref, 1.0, 1.0)
    ref[:96] = np.nan
    field = track_pair(ref, sec, 32, 6, 16)
    assert np.isnan(field.dx[:4]).all()
    assert np.isfinite(field.dx[-3:-1, 1:-1]).all()


def test_offsets_are_georeferenced_at_chip_centres():
    """Output pixel (i, j) is centred on chip (i, j)'s centre: no half-pixel shift."""
    grid = point_grid((200, 300), chip_px=32, step_px=16)
    image_transform = Affine(10.0, 0, 500_000.0, 0, -10.0, 4_000_000.0)
    t = grid.transform(image_transform)
    for i, j in [(0, 0), (3, 5), (grid.n_rows - 1, grid.n_cols - 1)]:
        centre_px = (j * 16 + 16, i * 16 + 16)  # (col, row) of the chip centre, pixel-is-area
        expected = image_transform @ centre_px
        got = t @ (j + 0.5, i + 0.5)
        assert got == pytest.approx(expected)
    assert t.a == 160.0 and t.e == -160.0


def test_bad_arguments_are_named():
    a = np.zeros((64, 64))
    with pytest.raises(ValueError, match="unknown tracking method 'nope'"):
        track_pair(a, a, method="nope")
    with pytest.raises(ValueError, match="differ in shape"):
        track_pair(a, np.zeros((60, 64)))
    with pytest.raises(ValueError, match="chip size 128 px is larger"):
        track_pair(a, a, chip_px=128)
