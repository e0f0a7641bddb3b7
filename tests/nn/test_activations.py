"""Tests for minflow/nn/activations.py: ReLU, LeakyReLU, Tanh, SiLU and their derivatives."""

import numpy
import pytest
from helpers import assert_block_passes_all_checks

from minflow.backend import to_device, to_numpy
from minflow.nn import LeakyReLU, ReLU, SiLU, Tanh


def away_from_kink(rng, shape):
    """Entries of random sign with |x| in [0.1, 2]: far from the kink at 0 compared to h = 1e-5."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)


@pytest.mark.parametrize("make", [ReLU, lambda: LeakyReLU(0.2), Tanh, SiLU], ids=["relu", "leaky_relu", "tanh", "silu"])
def test_activation_gradcheck(make, xp, rng):
    assert_block_passes_all_checks(lambda dtype: make(), away_from_kink(rng, (6, 5)), xp)


def test_activation_values(xp):
    x = to_device(numpy.array([[-2.0, -0.5, 0.0, 0.5, 3.0]]), xp)
    numpy.testing.assert_array_equal(to_numpy(ReLU().forward(x)), [[0, 0, 0, 0.5, 3.0]])
    numpy.testing.assert_allclose(to_numpy(LeakyReLU(0.1).forward(x)), [[-0.2, -0.05, 0, 0.5, 3.0]], rtol=1e-12)
    numpy.testing.assert_allclose(to_numpy(Tanh().forward(x)), numpy.tanh(to_numpy(x)), rtol=1e-12)
    x_host = to_numpy(x)
    numpy.testing.assert_allclose(to_numpy(SiLU().forward(x)), x_host / (1 + numpy.exp(-x_host)), rtol=1e-12)


def test_activation_derivatives_on_each_side():
    x = numpy.array([[-2.0, 3.0]])
    for layer, slopes in [(ReLU(), [0.0, 1.0]), (LeakyReLU(0.01), [0.01, 1.0]), (Tanh(), 1 - numpy.tanh(x[0]) ** 2)]:
        layer.forward(x)
        numpy.testing.assert_allclose(layer.backward(numpy.ones_like(x))[0], slopes, rtol=1e-12)


@pytest.mark.parametrize("layer", [ReLU(), LeakyReLU(), Tanh(), SiLU()], ids=["relu", "leaky_relu", "tanh", "silu"])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_activation_keeps_dtype_and_shape(layer, dtype):
    x = numpy.linspace(-1, 1, 24, dtype=dtype).reshape(2, 3, 4)
    y = layer.forward(x)
    dx = layer.backward(numpy.ones_like(y))
    assert (y.dtype, dx.dtype) == (dtype, dtype)
    assert y.shape == dx.shape == x.shape


def test_activation_backward_without_forward_is_an_error():
    with pytest.raises(RuntimeError, match="Tanh.backward"):
        Tanh().backward(numpy.ones(3))


def test_silu_derivative_matches_central_differences():
    x = numpy.linspace(-6, 6, 25)
    h = 1e-6
    numeric = (SiLU().forward(x + h) - SiLU().forward(x - h)) / (2 * h)
    numpy.testing.assert_allclose(SiLU.derivative(x), numeric, rtol=1e-8, atol=1e-10)
