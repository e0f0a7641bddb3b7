"""Tests for minflow/flows/affine_coupling.py: RealNVP's affine coupling for vectors."""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.flows import AffineCoupling, half_mask, parity_mask

MASKS = {
    "half": half_mask,
    "parity": lambda d: parity_mask(d, 1),
    "user": lambda d: numpy.array([False, True, True, False, True][:d]),
}


def make_affine(dim, mask, learnable_scale=False, activation="relu"):
    def make(dtype):
        layer = AffineCoupling(
            dim,
            mask,
            hidden=(8, 8),
            learnable_scale=learnable_scale,
            activation=activation,
            dtype=dtype,
            rng=make_rng(0),
        )
        return randomize_params(layer, numpy.random.default_rng(1), scale=0.5)

    return make


@pytest.mark.parametrize("dim", [2, 5])
@pytest.mark.parametrize("mask_name", sorted(MASKS))
@pytest.mark.parametrize("learnable_scale", [False, True], ids=["fixed_scale", "learnable_scale"])
def test_affine_coupling_passes_all_checks(dim, mask_name, learnable_scale, xp, rng):
    # gradients (input and every parameter, forward and inverse), log-det vs Jacobian,
    # round trips, dtype and shape
    make = make_affine(dim, MASKS[mask_name](dim), learnable_scale)
    assert_layer_passes_all_checks(make, rng.standard_normal((6, dim)), xp)


def test_affine_coupling_gradcheck_tanh_conditioner(xp, rng):
    assert_layer_passes_all_checks(make_affine(3, half_mask(3), True, "tanh"), rng.standard_normal((4, 3)), xp)


def test_affine_coupling_formula(rng):
    layer = make_affine(3, numpy.array([True, False, True]), learnable_scale=True)(numpy.float64)
    x = rng.standard_normal((4, 3))
    z, logdet = (to_numpy(a) for a in layer.forward(to_device(x)))  # on the layer's (default) backend
    h = to_numpy(layer.net.forward(to_device(x[:, [0, 2]])))
    s = to_numpy(layer.params["scale"]) * numpy.tanh(h[:, :1])
    numpy.testing.assert_array_equal(z[:, [0, 2]], x[:, [0, 2]])  # copied coordinates untouched
    numpy.testing.assert_allclose(z[:, 1:2], x[:, 1:2] * numpy.exp(s) + h[:, 1:], rtol=1e-12)
    numpy.testing.assert_allclose(logdet, s.sum(axis=1), rtol=1e-12)


def test_affine_coupling_starts_as_identity(rng):
    layer = AffineCoupling(4, half_mask(4), hidden=(16,), dtype=numpy.float64, rng=make_rng(0))
    x = rng.standard_normal((5, 4))
    z, logdet = layer.forward(to_device(x))
    numpy.testing.assert_array_equal(to_numpy(z), x)
    numpy.testing.assert_array_equal(to_numpy(logdet), numpy.zeros(5))


def test_affine_coupling_scale_is_bounded(rng):
    # s = tanh(s_raw) in (-1, 1): |logdet| < Db whatever the conditioner says
    layer = randomize_params(
        AffineCoupling(4, half_mask(4), hidden=(8,), dtype=numpy.float64, rng=make_rng(0)), rng, scale=50.0
    )
    _, logdet = layer.forward(to_device(10 * rng.standard_normal((100, 4))))
    assert numpy.abs(to_numpy(logdet)).max() <= 2.0


def test_affine_coupling_learnable_scale_param_only_when_asked():
    assert "scale" not in AffineCoupling(3, half_mask(3), hidden=(4,), rng=make_rng(0)).params
    layer = AffineCoupling(3, half_mask(3), hidden=(4,), learnable_scale=True, rng=make_rng(0))
    numpy.testing.assert_array_equal(to_numpy(layer.params["scale"]), numpy.ones(2))


def test_affine_coupling_rejects_wrong_shape():
    layer = AffineCoupling(3, half_mask(3), hidden=(4,), rng=make_rng(0))
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 3\); got \(5, 4\)"):
        layer.forward(numpy.zeros((5, 4), numpy.float32))
    with pytest.raises(ValueError, match=r"expects z of shape \(N, 3\); got \(2, 3, 3\)"):
        layer.inverse(numpy.zeros((2, 3, 3), numpy.float32))


def test_affine_coupling_backward_needs_its_own_pass(rng):
    layer = make_affine(2, half_mask(2))(numpy.float64)
    x, ones = to_device(rng.standard_normal((3, 2))), to_device(numpy.ones(3))
    with pytest.raises(RuntimeError, match="Call forward"):
        layer.backward(x, ones)
    layer.forward(x)
    layer.inverse(x)  # runs the conditioner again: the forward cache is stale
    with pytest.raises(RuntimeError, match="Call forward"):
        layer.backward(x, ones)
    layer.inverse_backward(x, ones)  # the inverse's own cache is fine
    with pytest.raises(RuntimeError, match="Call inverse"):
        layer.inverse_backward(x, ones)  # consumed
