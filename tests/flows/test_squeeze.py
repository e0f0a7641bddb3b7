"""Tests for minflow/flows/squeeze.py: space to depth by 2x2 blocks."""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks

from minflow.flows import Inverse
from minflow.flows.squeeze import Squeeze, squeeze, unsqueeze


def test_squeeze_channel_convention():
    # pixel (di, dj) of each 2x2 block goes to channel 4c + 2 di + dj
    x = numpy.arange(2 * 2 * 4 * 6).reshape(2, 2, 4, 6).astype(float)
    z = squeeze(x)
    assert z.shape == (2, 8, 2, 3)
    for c in range(2):
        for di in range(2):
            for dj in range(2):
                numpy.testing.assert_array_equal(z[:, 4 * c + 2 * di + dj], x[:, c, di::2, dj::2])


def test_squeeze_on_one_image_by_hand():
    x = numpy.array([[1.0, 2.0], [3.0, 4.0]])[None, None]
    numpy.testing.assert_array_equal(squeeze(x).ravel(), [1, 2, 3, 4])


def test_unsqueeze_inverts_squeeze(rng):
    x = rng.standard_normal((3, 2, 4, 6))
    numpy.testing.assert_array_equal(unsqueeze(squeeze(x)), x)


def test_squeeze_passes_all_checks(xp, rng):
    # no parameters: input gradients both ways, zero log-det vs the 32x32 Jacobian, round trips
    assert_layer_passes_all_checks(lambda dtype: Squeeze(), rng.standard_normal((2, 2, 4, 4)), xp)


def test_unsqueeze_passes_all_checks(xp, rng):
    assert_layer_passes_all_checks(lambda dtype: Inverse(Squeeze()), rng.standard_normal((2, 4, 2, 2)), xp)


def test_squeeze_logdet_is_zero(rng):
    _, logdet = Squeeze().forward(rng.standard_normal((3, 1, 4, 4)).astype(numpy.float32))
    assert logdet.dtype == numpy.float32
    numpy.testing.assert_array_equal(logdet, numpy.zeros(3))


def test_squeeze_rejects_odd_size():
    with pytest.raises(ValueError, match=r"even H and W; got \(1, 1, 3, 4\)"):
        Squeeze().forward(numpy.zeros((1, 1, 3, 4)))
    with pytest.raises(ValueError, match="multiple of 4"):
        Squeeze().inverse(numpy.zeros((1, 3, 2, 2)))
