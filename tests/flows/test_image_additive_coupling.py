"""Tests for minflow/flows/image_additive_coupling.py: NICE's additive coupling on images, channel masks."""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.flows.image_additive_coupling import ImageAdditiveCoupling
from minflow.flows.image_masks import channel_mask, checkerboard_mask


def make_additive(first):
    def make(dtype):
        layer = ImageAdditiveCoupling(4, channel_mask(4, first), hidden=3, n_blocks=1, dtype=dtype, rng=make_rng(0))
        return randomize_params(layer, numpy.random.default_rng(1), scale=0.5)

    return make


@pytest.mark.parametrize("first", [True, False], ids=["copy_first", "copy_second"])
def test_image_additive_coupling_passes_all_checks(first, xp, rng):
    # gradients (input and every conditioner parameter, both directions), log-det 0 vs Jacobian,
    # round trips, dtypes
    assert_layer_passes_all_checks(make_additive(first), rng.standard_normal((2, 4, 3, 3)), xp)


def test_image_additive_coupling_formula(rng):
    layer = make_additive(True)(numpy.float64)
    x = rng.standard_normal((3, 4, 2, 2))
    z, logdet = (to_numpy(a) for a in layer.forward(to_device(x)))  # on the layer's (default) backend
    numpy.testing.assert_array_equal(z[:, :2], x[:, :2])  # copied channels untouched
    numpy.testing.assert_allclose(z[:, 2:], x[:, 2:] + to_numpy(layer.net.forward(to_device(x[:, :2]))), rtol=1e-13)
    numpy.testing.assert_array_equal(logdet, numpy.zeros(3))


def test_image_additive_coupling_starts_as_identity(rng):
    x = rng.standard_normal((2, 4, 3, 3))
    z, _ = ImageAdditiveCoupling(
        4, channel_mask(4), hidden=4, n_blocks=1, dtype=numpy.float64, rng=make_rng(0)
    ).forward(to_device(x))
    numpy.testing.assert_array_equal(to_numpy(z), x)


def test_image_additive_coupling_backward_after_other_pass_is_an_error(rng):
    layer = make_additive(True)(numpy.float64)
    x = to_device(rng.standard_normal((2, 4, 3, 3)))
    z, _ = layer.forward(x)
    layer.inverse(z)  # overwrites the conditioner's caches
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(z, to_device(numpy.zeros(2)))


def test_image_additive_coupling_rejects_spatial_mask_and_wrong_shape():
    with pytest.raises(ValueError, match="channel mask"):
        ImageAdditiveCoupling(1, checkerboard_mask(4, 4), rng=make_rng(0))
    layer = ImageAdditiveCoupling(4, channel_mask(4), hidden=4, n_blocks=1, rng=make_rng(0))
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 4, H, W\)"):
        layer.forward(numpy.zeros((2, 2, 3, 3), dtype=numpy.float32))
