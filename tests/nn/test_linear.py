"""Tests for minflow/nn/linear.py: y = x W + b and its hand-written backward."""

import math

import numpy
import pytest
from helpers import assert_block_passes_all_checks

from minflow.backend import make_rng, to_device, to_numpy
from minflow.nn import Linear
from minflow.nn.linear import INITS


@pytest.mark.parametrize("init", INITS)
def test_linear_gradcheck_every_init(init, xp, rng):
    # parameters as each init leaves them, plus a random bias where the init zeroes it,
    # so that the check never rests on an all-zero array
    def make(dtype):
        layer = Linear(3, 4, init=init, dtype=dtype, rng=make_rng(0, numpy))
        for p in layer.params.values():
            if not (p != 0).any():
                p[...] = numpy.random.default_rng(1).uniform(0.1, 1.0, p.shape)
        return layer

    x = rng.standard_normal((5, 3))
    assert_block_passes_all_checks(make, x, xp)


def test_linear_forward_is_x_w_plus_b(xp, rng):
    layer = Linear(3, 2, dtype=numpy.float64, rng=make_rng(0, numpy)).to(xp)
    x = rng.standard_normal((4, 3))
    W, b = to_numpy(layer.params["W"]), to_numpy(layer.params["b"])
    y = to_numpy(layer.forward(to_device(x, xp)))
    expected = numpy.array([[sum(x[n, d] * W[d, k] for d in range(3)) + b[k] for k in range(2)] for n in range(4)])
    numpy.testing.assert_allclose(y, expected, rtol=1e-12)


def test_linear_backward_formulas_and_accumulation(rng):
    layer = Linear(3, 2, dtype=numpy.float64, rng=make_rng(0))  # on the default backend
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer.forward(to_device(x))
    dx = to_numpy(layer.backward(to_device(dy)))
    numpy.testing.assert_allclose(dx, dy @ to_numpy(layer.params["W"]).T, rtol=1e-12)
    numpy.testing.assert_allclose(to_numpy(layer.grads["W"]), x.T @ dy, rtol=1e-12)
    numpy.testing.assert_allclose(to_numpy(layer.grads["b"]), dy.sum(axis=0), rtol=1e-12)
    layer.forward(to_device(x))
    layer.backward(to_device(dy))  # gradients accumulate
    numpy.testing.assert_allclose(to_numpy(layer.grads["W"]), 2 * x.T @ dy, rtol=1e-12)
    layer.zero_grads()
    assert not layer.grads["W"].any() and not layer.grads["b"].any()


def test_linear_init_distributions():
    d, k = 64, 32
    uniform = Linear(d, k, init="uniform", rng=make_rng(0))
    bound = 1 / math.sqrt(d)
    for p in uniform.params.values():
        assert numpy.abs(p).max() <= bound and numpy.abs(p).max() > 0.9 * bound
    normal = Linear(d, k, init="normal", rng=make_rng(0))
    assert normal.params["W"].std() == pytest.approx(1 / math.sqrt(d), rel=0.05)
    assert not normal.params["b"].any()
    xavier = Linear(d, k, init="xavier", rng=make_rng(0))
    bound = math.sqrt(6 / (d + k))
    assert bound * 0.9 < numpy.abs(xavier.params["W"]).max() <= bound
    assert not xavier.params["b"].any()
    zeros = Linear(d, k, init="zeros", rng=make_rng(0))
    assert not zeros.params["W"].any() and not zeros.params["b"].any()
    assert zeros.params["W"].shape == (d, k) and zeros.params["b"].shape == (k,)


def test_linear_init_reproducible_from_seed():
    a = to_numpy(Linear(4, 3, rng=make_rng(7)).params["W"])
    b = to_numpy(Linear(4, 3, rng=make_rng(7)).params["W"])
    c = to_numpy(Linear(4, 3, rng=make_rng(8)).params["W"])
    numpy.testing.assert_array_equal(a, b)
    assert not numpy.array_equal(a, c)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_linear_keeps_dtype(dtype):
    layer = Linear(3, 2, dtype=dtype, rng=make_rng(0))
    assert all(p.dtype == dtype for p in layer.params.values())
    assert all(g.dtype == dtype for g in layer.grads.values())
    assert layer.forward(to_device(numpy.ones((5, 3), dtype))).dtype == dtype


def test_linear_rejects_unknown_init():
    with pytest.raises(ValueError, match="init must be one of"):
        Linear(2, 2, init="kaiming", rng=make_rng(0))


def test_linear_backward_without_forward_is_an_error():
    layer = Linear(2, 2, rng=make_rng(0))
    with pytest.raises(RuntimeError, match="Call forward"):
        layer.backward(numpy.ones((1, 2), numpy.float32))
