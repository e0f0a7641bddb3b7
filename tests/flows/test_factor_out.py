"""Tests for minflow/flows/factor_out.py: the multi-scale split as one bijection."""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.flows import Flow
from minflow.flows.factor_out import FactorOut
from minflow.flows.image_coupling import ImageAffineCoupling
from minflow.flows.image_masks import checkerboard_mask


def make_factor_out(dtype):
    inner = Flow(
        [
            ImageAffineCoupling(2, checkerboard_mask(2, 2, q), hidden=3, n_blocks=1, dtype=dtype, rng=make_rng(q))
            for q in (0, 1)
        ]
    )
    return randomize_params(FactorOut(inner, keep=2), numpy.random.default_rng(1), scale=0.3)


def test_factor_out_passes_all_checks(xp, rng):
    # 4x2x2: gradients of input and every inner parameter array (40 random entries each) both ways,
    # log-det vs the Jacobian, round trips
    assert_layer_passes_all_checks(make_factor_out, rng.standard_normal((2, 4, 2, 2)), xp, max_entries=40)


def test_factor_out_passes_factored_channels_unchanged(rng):
    layer = make_factor_out(numpy.float64)
    x = rng.standard_normal((3, 4, 2, 2))
    z, logdet = (to_numpy(a) for a in layer.forward(to_device(x)))  # on the layer's (default) backend
    numpy.testing.assert_array_equal(z[:, 2:], x[:, 2:])
    z_inner, logdet_inner = (to_numpy(a) for a in layer.inner.forward(to_device(x[:, :2])))
    numpy.testing.assert_array_equal(z[:, :2], z_inner)
    numpy.testing.assert_array_equal(logdet, logdet_inner)
    assert numpy.abs(logdet).min() > 0  # the inner flow is not the identity


def test_factor_out_backward_passes_factored_gradient(rng):
    layer = make_factor_out(numpy.float64)
    x = rng.standard_normal((2, 4, 2, 2))
    layer.forward(to_device(x))
    dz = rng.standard_normal((2, 4, 2, 2))
    dx = to_numpy(layer.backward(to_device(dz), to_device(numpy.zeros(2))))
    numpy.testing.assert_array_equal(dx[:, 2:], dz[:, 2:])


def test_factor_out_rejects_bad_arguments():
    with pytest.raises(TypeError, match="Bijection"):
        FactorOut(object(), keep=2)
    with pytest.raises(ValueError, match="keep"):
        FactorOut(Flow([]), keep=0)
    with pytest.raises(ValueError, match=r"C > keep = 2; got \(1, 2, 2, 2\)"):
        FactorOut(Flow([]), keep=2).forward(numpy.zeros((1, 2, 2, 2)))
