"""Tests for minflow/nn/layer_norm.py: LayerNorm over the last axis and its backward."""

import numpy
import pytest
from helpers import assert_block_passes_all_checks, randomize_params

from minflow.backend import to_device, to_numpy
from minflow.nn import LayerNorm


@pytest.mark.parametrize("shape", [(5, 6), (3, 4, 6)], ids=["rows", "tokens"])
def test_layer_norm_gradcheck(shape, xp, rng):
    def make(dtype):
        return randomize_params(LayerNorm(6, dtype=dtype), numpy.random.default_rng(1))

    assert_block_passes_all_checks(make, rng.standard_normal(shape) * 2 + 1, xp)


def test_layer_norm_output_has_zero_mean_unit_variance_then_gamma_beta(xp, rng):
    norm = LayerNorm(8, dtype=numpy.float64).to(xp)
    x = to_device(rng.standard_normal((4, 3, 8)) * 3 + 5, xp)
    y = to_numpy(norm.forward(x))
    numpy.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-12)
    numpy.testing.assert_allclose(y.var(axis=-1), 1 / (1 + 1e-5 / to_numpy(x).var(axis=-1)), rtol=1e-12)
    randomize_params(norm, numpy.random.default_rng(0))
    g, b = to_numpy(norm.params["gamma"]), to_numpy(norm.params["beta"])
    numpy.testing.assert_allclose(to_numpy(norm.forward(x)), y * g + b, rtol=1e-12, atol=1e-12)


def test_layer_norm_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"LayerNorm\(4\) expects x of shape \(\.\.\., 4\)"):
        LayerNorm(4).forward(numpy.ones((2, 5), numpy.float32))
