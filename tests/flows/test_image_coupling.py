"""Tests for minflow/flows/image_coupling.py: RealNVP's affine coupling on images."""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.flows.image_coupling import ImageAffineCoupling
from minflow.flows.image_masks import channel_mask, checkerboard_mask
from minflow.gradcheck import brute_force_logdet


def make_coupling(channels, mask, learnable_scale=False, hidden=4, n_blocks=1):
    def make(dtype):
        layer = ImageAffineCoupling(
            channels,
            mask,
            hidden=hidden,
            n_blocks=n_blocks,
            learnable_scale=learnable_scale,
            dtype=dtype,
            rng=make_rng(0),
        )
        return randomize_params(layer, numpy.random.default_rng(1), scale=0.3)

    return make


@pytest.mark.parametrize("parity", [0, 1])
@pytest.mark.parametrize("learnable_scale", [False, True], ids=["fixed_scale", "learnable_scale"])
def test_checkerboard_coupling_passes_all_checks(parity, learnable_scale, xp, rng):
    # 1x4x4: gradients of input and every parameter both ways, log-det vs the 16x16 Jacobian, round trips
    make = make_coupling(1, checkerboard_mask(4, 4, parity), learnable_scale)
    assert_layer_passes_all_checks(make, rng.standard_normal((2, 1, 4, 4)), xp)


@pytest.mark.parametrize("first", [True, False], ids=["copy_first_half", "copy_second_half"])
@pytest.mark.parametrize("learnable_scale", [False, True], ids=["fixed_scale", "learnable_scale"])
def test_channel_coupling_passes_all_checks(first, learnable_scale, xp, rng):
    # 4x4x4: log-det against the brute-force 64x64 Jacobian
    make = make_coupling(4, channel_mask(4, first), learnable_scale)
    assert_layer_passes_all_checks(make, rng.standard_normal((2, 4, 4, 4)), xp)


def test_checkerboard_coupling_multichannel_passes_all_checks(xp, rng):
    # 4x4x4 with a checkerboard: the conditioner sees all 4 masked channels (in C, out 2C)
    make = make_coupling(4, checkerboard_mask(4, 4, 1), hidden=3, n_blocks=2)
    assert_layer_passes_all_checks(make, rng.standard_normal((2, 4, 4, 4)), xp, max_entries=40)


def test_checkerboard_coupling_formula(rng):
    mask = checkerboard_mask(4, 4, 0)
    layer = make_coupling(2, mask, learnable_scale=True)(numpy.float64)
    x = rng.standard_normal((3, 2, 4, 4))
    z, logdet = (to_numpy(a) for a in layer.forward(to_device(x)))  # on the layer's (default) backend
    h = to_numpy(layer.net.forward(to_device(x * mask)))  # the conditioner sees the masked image, all channels
    assert h.shape == (3, 4, 4, 4)
    s = to_numpy(layer.params["scale"]) * numpy.tanh(h[:, :2])
    expected = numpy.where(mask, x, x * numpy.exp(s) + h[:, 2:])
    numpy.testing.assert_allclose(z, expected, rtol=1e-12)
    numpy.testing.assert_allclose(logdet, (s * ~mask).sum(axis=(1, 2, 3)), rtol=1e-12)


def test_checkerboard_coupling_copied_pixels_ignore_transformed_ones(rng):
    # dz/dx is triangular: changing a transformed pixel changes only that pixel of z
    layer = make_coupling(1, checkerboard_mask(4, 4, 1))(numpy.float64)
    x = rng.standard_normal((1, 1, 4, 4))
    z = to_numpy(layer.forward(to_device(x))[0])
    x2 = x.copy()
    x2[0, 0, 0, 0] += 1.0  # (0 + 0) % 2 = 0: transformed under parity 1
    diff = to_numpy(layer.forward(to_device(x2))[0]) - z
    assert diff[0, 0, 0, 0] != 0
    diff[0, 0, 0, 0] = 0
    numpy.testing.assert_array_equal(diff, numpy.zeros_like(diff))


def test_channel_coupling_formula(rng):
    layer = make_coupling(4, channel_mask(4, first=False))(numpy.float64)
    x = rng.standard_normal((3, 4, 2, 2))
    z, logdet = (to_numpy(a) for a in layer.forward(to_device(x)))  # on the layer's (default) backend
    h = to_numpy(layer.net.forward(to_device(x[:, 2:])))  # the conditioner sees the copied channels 2:4 (in C/2, out C)
    assert h.shape == (3, 4, 2, 2)
    s = numpy.tanh(h[:, :2])
    numpy.testing.assert_array_equal(z[:, 2:], x[:, 2:])
    numpy.testing.assert_allclose(z[:, :2], x[:, :2] * numpy.exp(s) + h[:, 2:], rtol=1e-12)
    numpy.testing.assert_allclose(logdet, s.sum(axis=(1, 2, 3)), rtol=1e-12)


def test_image_coupling_logdet_matches_jacobian_at_d8_width(rng):
    # the D8 conditioner (32 wide, 2 blocks) on a 1x4x4 image, parameters randomised
    layer = randomize_params(
        ImageAffineCoupling(1, checkerboard_mask(4, 4, 0), dtype=numpy.float64, rng=make_rng(0)),
        numpy.random.default_rng(2),
        0.1,
    )
    x = to_device(rng.standard_normal((2, 1, 4, 4)))
    logdet = to_numpy(layer.forward(x)[1])
    numpy.testing.assert_allclose(logdet, to_numpy(brute_force_logdet(layer.forward, x)), atol=1e-7)
    assert numpy.abs(logdet).min() > 0.1  # a real test: far from the identity


def test_image_coupling_starts_as_identity(rng):
    layer = ImageAffineCoupling(4, channel_mask(4), hidden=8, dtype=numpy.float64, rng=make_rng(0))
    x = rng.standard_normal((2, 4, 4, 4))
    z, logdet = layer.forward(to_device(x))
    numpy.testing.assert_array_equal(to_numpy(z), x)
    numpy.testing.assert_array_equal(to_numpy(logdet), numpy.zeros(2))


def test_image_coupling_conditioner_sizes_follow_d8_conventions():
    cb = ImageAffineCoupling(2, checkerboard_mask(4, 4, 0), rng=make_rng(0))
    assert cb.params["net.conv_in.W"].shape[1] == 2 and cb.params["net.conv_out.W"].shape[0] == 4
    ch = ImageAffineCoupling(4, channel_mask(4), rng=make_rng(0))
    assert ch.params["net.conv_in.W"].shape[1] == 2 and ch.params["net.conv_out.W"].shape[0] == 4


def test_image_coupling_rejects_wrong_shape():
    layer = ImageAffineCoupling(1, checkerboard_mask(8, 8, 0), hidden=4, rng=make_rng(0))
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 1, 8, 8\); got \(2, 1, 4, 4\)"):
        layer.forward(numpy.zeros((2, 1, 4, 4), numpy.float32))
    layer = ImageAffineCoupling(4, channel_mask(4), hidden=4, rng=make_rng(0))
    with pytest.raises(ValueError, match=r"expects z of shape \(N, 4, H, W\); got \(2, 2, 4, 4\)"):
        layer.inverse(numpy.zeros((2, 2, 4, 4), numpy.float32))
    with pytest.raises(ValueError, match="one entry per channel"):
        ImageAffineCoupling(6, channel_mask(4), rng=make_rng(0))


def test_image_coupling_inverse_pass_drops_forward_cache(rng):
    layer = make_coupling(1, checkerboard_mask(4, 4, 0))(numpy.float64)
    x = to_device(rng.standard_normal((2, 1, 4, 4)))
    z, logdet = layer.forward(x)
    layer.inverse(z)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(z, logdet)
