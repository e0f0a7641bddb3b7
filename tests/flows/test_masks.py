"""Tests for minflow/flows/masks.py: which coordinates a vector coupling copies."""

import numpy
import pytest

from minflow.flows import check_mask, half_mask, parity_mask


def test_half_mask():
    numpy.testing.assert_array_equal(half_mask(5), [True, True, False, False, False])
    numpy.testing.assert_array_equal(half_mask(5, first=False), [False, False, True, True, True])
    numpy.testing.assert_array_equal(half_mask(2), [True, False])
    assert half_mask(4).dtype == bool


def test_parity_mask():
    numpy.testing.assert_array_equal(parity_mask(5, 0), [True, False, True, False, True])
    numpy.testing.assert_array_equal(parity_mask(5, 1), [False, True, False, True, False])
    with pytest.raises(ValueError, match="parity must be 0 or 1"):
        parity_mask(4, 2)


def test_check_mask_accepts_zero_one_values():
    mask = check_mask([1, 0, 1], 3)
    assert mask.dtype == bool
    numpy.testing.assert_array_equal(mask, [True, False, True])


@pytest.mark.parametrize(
    "mask,dim,message",
    [
        (numpy.ones((2, 2), bool), None, "must be 1-D"),
        ([0, 2, 1], None, "only True/False"),
        ([True, False], 3, "length 2 but the data has D=3"),
        ([True, True, True], 3, "at least one"),
        ([False, False], 2, "at least one"),
    ],
)
def test_check_mask_rejects_bad_masks(mask, dim, message):
    with pytest.raises(ValueError, match=message):
        check_mask(mask, dim)


def test_half_mask_of_one_feature_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        half_mask(1)
