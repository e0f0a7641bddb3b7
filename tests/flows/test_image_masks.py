"""Tests for minflow/flows/image_masks.py: checkerboard and channel masks for image couplings."""

import numpy
import pytest

from minflow.flows.image_masks import channel_mask, check_image_mask, checkerboard_mask


def test_checkerboard_mask_parity_0_copies_even_sums():
    numpy.testing.assert_array_equal(
        checkerboard_mask(3, 4, 0),
        [[True, False, True, False], [False, True, False, True], [True, False, True, False]],
    )


def test_checkerboard_masks_of_both_parities_complement():
    m0, m1 = checkerboard_mask(4, 4, 0), checkerboard_mask(4, 4, 1)
    numpy.testing.assert_array_equal(m0, ~m1)
    assert m0.sum() == m1.sum() == 8 and m1[0, 1]


def test_channel_mask_halves():
    numpy.testing.assert_array_equal(channel_mask(4, first=True), [True, True, False, False])
    numpy.testing.assert_array_equal(channel_mask(4, first=False), [False, False, True, True])


def test_image_masks_reject_bad_arguments():
    with pytest.raises(ValueError, match="parity must be 0 or 1"):
        checkerboard_mask(4, 4, 2)
    with pytest.raises(ValueError, match="even number of channels"):
        channel_mask(3)
    with pytest.raises(ValueError, match="copy some entries"):
        check_image_mask(numpy.ones((2, 2), bool))
    with pytest.raises(ValueError, match=r"spatial \(H, W\) or channel-wise \(C,\)"):
        check_image_mask(numpy.ones((1, 2, 2), bool))
    with pytest.raises(ValueError, match="only True/False"):
        check_image_mask(numpy.array([0, 2]))
    numpy.testing.assert_array_equal(check_image_mask([1, 0]), [True, False])
