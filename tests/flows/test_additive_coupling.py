"""Tests for minflow/flows/additive_coupling.py: NICE's volume-preserving coupling."""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.flows import AdditiveCoupling, half_mask, parity_mask


def make_additive(dim, mask):
    def make(dtype):
        layer = AdditiveCoupling(dim, mask, hidden=(8, 8), dtype=dtype, rng=make_rng(0))
        return randomize_params(layer, numpy.random.default_rng(1))

    return make


@pytest.mark.parametrize("dim,mask", [(2, half_mask(2)), (5, parity_mask(5, 0)), (5, [1, 0, 0, 1, 0])])
def test_additive_coupling_passes_all_checks(dim, mask, xp, rng):
    assert_layer_passes_all_checks(make_additive(dim, mask), rng.standard_normal((6, dim)), xp)


def test_additive_coupling_formula_and_zero_logdet(rng):
    layer = make_additive(3, half_mask(3))(numpy.float64)
    x = rng.standard_normal((4, 3))
    z, logdet = (to_numpy(a) for a in layer.forward(to_device(x)))  # on the layer's (default) backend
    numpy.testing.assert_array_equal(z[:, :1], x[:, :1])
    numpy.testing.assert_allclose(z[:, 1:], x[:, 1:] + to_numpy(layer.net.forward(to_device(x[:, :1]))), rtol=1e-12)
    numpy.testing.assert_array_equal(logdet, numpy.zeros(4))


def test_additive_coupling_starts_as_identity(rng):
    layer = AdditiveCoupling(4, half_mask(4), hidden=(8,), dtype=numpy.float64, rng=make_rng(0))
    x = rng.standard_normal((3, 4))
    numpy.testing.assert_array_equal(to_numpy(layer.forward(to_device(x))[0]), x)


def test_additive_coupling_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 4\)"):
        AdditiveCoupling(4, half_mask(4), hidden=(8,), rng=make_rng(0)).forward(numpy.zeros((2, 3), numpy.float32))
