"""Tests for minflow/flows/actnorm.py: Glow's ActNorm with data-dependent initialisation.

Layers are built on the default backend (MINFLOW_BACKEND); ``batch`` puts the
data there too, and results come back with ``to_numpy`` to be checked.
"""

import math

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import to_device, to_numpy
from minflow.flows.actnorm import ActNorm
from minflow.gradcheck import check_gradients

SHAPES = {"vectors": (7, 3), "images": (4, 3, 3, 2)}


def batch(kind, seed=0):
    """Float64 data with per-channel means and spreads far from (0, 1), on the default backend."""
    rng = numpy.random.default_rng(seed)
    shape = SHAPES[kind]
    scale = numpy.array([0.5, 2.0, 4.0]).reshape((1, 3) + (1,) * (len(shape) - 2))
    return to_device(rng.standard_normal(shape) * scale + 3.0)


def randomized_layer(x, seed=1):
    """A float64 ActNorm initialised on x, then with every parameter nudged away from the init."""
    layer = ActNorm(3, dtype=numpy.float64)
    layer.forward(x)
    rng = numpy.random.default_rng(seed)
    for p in layer.params.values():
        p += to_device(0.3 * rng.standard_normal(p.shape))
    return layer


@pytest.mark.parametrize("kind", SHAPES)
def test_actnorm_data_init_gives_zero_mean_unit_std(kind):
    x = batch(kind)
    layer = ActNorm(3, dtype=numpy.float64)
    assert not layer.initialized
    z, _ = layer.forward(x)
    axes = (0,) + tuple(range(2, x.ndim))
    numpy.testing.assert_allclose(to_numpy(z.mean(axis=axes)), 0.0, atol=1e-6)
    numpy.testing.assert_allclose(to_numpy(z.std(axis=axes)), 1.0, atol=1e-6)
    assert layer.initialized


def test_actnorm_data_init_in_float32_from_float32_batch():
    x = batch("images").astype(numpy.float32)
    z, logdet = ActNorm(3).forward(x)
    assert z.dtype == numpy.float32 and logdet.dtype == numpy.float32
    numpy.testing.assert_allclose(to_numpy(z.astype(numpy.float64).std(axis=(0, 2, 3))), 1.0, atol=1e-5)


def test_actnorm_initializes_on_the_first_batch_only():
    layer = ActNorm(3, dtype=numpy.float64)
    layer.forward(batch("vectors", seed=0))
    before = {k: to_numpy(v).copy() for k, v in layer.params.items()}
    layer.forward(batch("vectors", seed=5) * 10)
    for name, value in before.items():
        numpy.testing.assert_array_equal(to_numpy(layer.params[name]), value)


def test_actnorm_without_data_init_starts_as_identity():
    x = batch("images")
    z, logdet = ActNorm(3, data_init=False, dtype=numpy.float64).forward(x)
    numpy.testing.assert_array_equal(to_numpy(z), to_numpy(x))
    numpy.testing.assert_array_equal(to_numpy(logdet), numpy.zeros(x.shape[0]))


@pytest.mark.parametrize("kind", SHAPES)
def test_actnorm_logdet_is_pixels_times_sum_of_log_scale(kind):
    x = batch(kind)
    layer = randomized_layer(x)
    _, logdet = layer.forward(x)
    spatial = math.prod(x.shape[2:])
    numpy.testing.assert_allclose(to_numpy(logdet), to_numpy(spatial * layer.params["log_scale"].sum()), rtol=1e-14)
    assert logdet.shape == (x.shape[0],)


@pytest.mark.parametrize("kind", SHAPES)
def test_actnorm_passes_all_checks(kind, xp):
    """Gradients (input, log_scale, bias; both directions), log-det vs Jacobian, round trips, dtypes."""

    def make(dtype):
        return randomize_params(ActNorm(3, data_init=False, dtype=dtype), numpy.random.default_rng(1))

    assert_layer_passes_all_checks(make, batch(kind), xp)


@pytest.mark.parametrize("kind", SHAPES)
def test_actnorm_gradcheck_after_data_init(kind):
    x = batch(kind)
    report = check_gradients(randomized_layer(x), x)
    assert report.ok, report
    assert len(report.rows) == 6  # input, log_scale, bias in both directions


def test_actnorm_initialized_buffer_is_saved_and_restored():
    x = batch("images")
    trained = randomized_layer(x)
    assert trained.buffers()["initialized"].tolist() == [1.0]
    fresh = ActNorm(3, dtype=numpy.float64)
    assert fresh.buffers()["initialized"].tolist() == [0.0]
    # load a checkpoint: parameters and buffers
    for name, value in trained.params.items():
        fresh.params[name][...] = value
    for name, value in trained.buffers().items():
        fresh.set_buffer(name, value)
    z_fresh, _ = fresh.forward(x * 7.0)  # a loaded layer is not re-initialised
    z_trained, _ = trained.forward(x * 7.0)
    numpy.testing.assert_array_equal(to_numpy(z_fresh), to_numpy(z_trained))


def test_actnorm_initialized_buffer_survives_astype():
    layer = randomized_layer(batch("vectors")).astype(numpy.float32)
    assert layer.initialized
    assert layer.buffers()["initialized"].dtype == numpy.float32


def test_actnorm_inverse_and_its_backward_change_neither_parameters_nor_buffer():
    z = batch("vectors")
    layer = ActNorm(3, dtype=numpy.float64)
    x, _ = layer.inverse(z)
    numpy.testing.assert_array_equal(to_numpy(x), to_numpy(z))  # identity before initialisation
    assert not layer.initialized
    layer.inverse_backward(to_device(numpy.ones(z.shape)), to_device(numpy.ones(z.shape[0])))
    assert not layer.initialized and layer.buffers()["initialized"].tolist() == [0.0]
    assert all(not p.any() for p in layer.params.values())
    assert layer.grads["log_scale"].any() and layer.grads["bias"].any()  # but it has gradients


def test_actnorm_trained_through_the_inverse_keeps_its_parameters_at_the_first_forward():
    """Reverse KL never runs forward: the first forward afterwards must not reset the trained parameters."""
    z = batch("vectors")
    layer = ActNorm(3, dtype=numpy.float64)
    layer.inverse(z)
    layer.inverse_backward(to_device(numpy.ones(z.shape)), to_device(numpy.ones(z.shape[0])))
    for name, p in layer.params.items():
        p -= 0.1 * layer.grads[name]  # an optimizer step
    trained = {k: v.copy() for k, v in layer.params.items()}
    layer.forward(batch("vectors", seed=3) * 10)
    assert layer.initialized
    for name, value in trained.items():
        numpy.testing.assert_array_equal(to_numpy(layer.params[name]), to_numpy(value))


def test_actnorm_rejects_wrong_shape():
    layer = ActNorm(3)
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 3\)"):
        layer.forward(numpy.zeros((4, 2), dtype=numpy.float32))
    with pytest.raises(ValueError, match="positive integer"):
        ActNorm(0)


def test_actnorm_backward_without_forward_is_an_error():
    with pytest.raises(RuntimeError, match="forward"):
        ActNorm(3).backward(numpy.zeros((2, 3)), numpy.zeros(2))
