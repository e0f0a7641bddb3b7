"""Tests for minflow/flows/batch_norm.py: RealNVP's batch normalization flow layer.

Training mode: gradients follow the whole dependence of the loss on the
batch statistics (the finite differences recompute them), while the log-det
is that of the per-sample map with the statistics frozen. Evaluation mode:
an exact bijection with the running statistics.

Layers without ``.to(xp)`` live on the default backend (MINFLOW_BACKEND): their
inputs go there with ``to_device`` and their results come back with ``to_numpy``.
"""

import math

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import to_device, to_numpy
from minflow.flows import Flow
from minflow.flows.batch_norm import BatchNorm, set_training
from minflow.gradcheck import brute_force_logdet, check_gradients, numerical_gradient

SHAPES = {"vectors": (7, 3), "images": (4, 3, 3, 2)}


def batch(kind, seed=0):
    rng = numpy.random.default_rng(seed)
    shape = SHAPES[kind]
    scale = numpy.array([0.5, 2.0, 4.0]).reshape((1, 3) + (1,) * (len(shape) - 2))
    return rng.standard_normal(shape) * scale + 1.5


def randomized_layer(training=True, dtype=numpy.float64, seed=1):
    """A BatchNorm with random parameters and running statistics, on the default backend."""
    layer = BatchNorm(3, dtype=dtype)
    rng = numpy.random.default_rng(seed)
    randomize_params(layer, rng, scale=0.3)
    layer.set_buffer("running_mean", to_device(rng.standard_normal(3), dtype=dtype))
    layer.set_buffer("running_var", to_device(numpy.exp(rng.standard_normal(3)), dtype=dtype))
    return layer.train(training)


def axes_of(x):
    return (0,) + tuple(range(2, x.ndim))


@pytest.mark.parametrize("kind", SHAPES)
def test_batch_norm_training_gradcheck_forward_and_inverse(kind, xp):
    """The finite differences recompute the batch statistics: the full dependence is checked."""
    layer = randomized_layer(True).to(xp)
    report = check_gradients(layer, to_device(batch(kind), xp))
    assert report.ok, report
    assert len(report.rows) == 6  # input, log_gamma, beta in both directions


@pytest.mark.parametrize("kind", SHAPES)
def test_batch_norm_eval_passes_all_checks(kind, xp):
    """Evaluation mode: gradients, log-det vs Jacobian, round trips, dtypes."""

    def make(dtype):
        return randomized_layer(False, dtype)

    assert_layer_passes_all_checks(make, batch(kind), xp)


@pytest.mark.parametrize("kind", SHAPES)
def test_batch_norm_training_logdet_gradient_flows_through_the_variance(kind):
    x = to_device(batch(kind))
    layer = randomized_layer(True)
    dlogdet = to_device(numpy.random.default_rng(2).standard_normal(x.shape[0]))
    layer.forward(x)
    dx = to_numpy(layer.backward(to_device(numpy.zeros(x.shape)), dlogdet))  # L = sum_n dlogdet_n * logdet_n only
    numeric = to_numpy(numerical_gradient(lambda: float(dlogdet @ layer.forward(x)[1]), x))
    assert numpy.abs(dx).max() > 1e-3  # the log-det does depend on x, through var
    numpy.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", SHAPES)
def test_batch_norm_training_logdet_matches_jacobian_with_frozen_statistics(kind):
    x = to_device(batch(kind))
    layer = randomized_layer(True)
    logdet = to_numpy(layer.forward(x)[1])
    axes = axes_of(x)
    # the same map with mu, var frozen at this batch's statistics
    frozen = randomized_layer(False)
    frozen.running_mean, frozen.running_var = x.mean(axis=axes), x.var(axis=axes)
    brute = to_numpy(brute_force_logdet(frozen.forward, x))
    numpy.testing.assert_allclose(logdet, brute, atol=1e-7)
    spatial = math.prod(x.shape[2:])
    expected = spatial * (layer.params["log_gamma"] - 0.5 * numpy.log(x.var(axis=axes) + layer.eps)).sum()
    numpy.testing.assert_allclose(logdet, to_numpy(expected), rtol=1e-13)


def test_batch_norm_training_batch_map_is_not_invertible():
    """What treating the statistics as constants hides: the map of a whole batch is singular."""
    x = batch("vectors")  # on the host; each Jacobian column's two points are moved to the layer
    layer = randomized_layer(True)
    layer.eps = 1e-14  # eps > 0 keeps the scale direction barely alive (singular value ~ eps / var)
    n, c = x.shape
    flat = x.reshape(-1)
    jac = numpy.zeros((n * c, n * c))
    h = 1e-5
    for j in range(n * c):
        step = numpy.zeros(n * c)
        step[j] = h
        plus = to_numpy(layer.forward(to_device((flat + step).reshape(n, c)))[0]).reshape(-1)
        minus = to_numpy(layer.forward(to_device((flat - step).reshape(n, c)))[0]).reshape(-1)
        jac[:, j] = (plus - minus) / (2 * h)
    singular_values = numpy.linalg.svd(jac, compute_uv=False)
    # shift and scale of each channel across the batch are lost: 2 zero singular values per channel
    assert numpy.sum(singular_values < 1e-6) == 2 * c
    assert numpy.sum(singular_values > 1e-2) == n * c - 2 * c


@pytest.mark.parametrize("kind", SHAPES)
def test_batch_norm_eval_uses_running_statistics(kind):
    x = batch(kind)
    layer = randomized_layer(False)
    running = to_numpy(layer.running_mean).copy(), to_numpy(layer.running_var).copy()
    z = to_numpy(layer.forward(to_device(x))[0])
    mean, var = to_numpy(layer.running_mean), to_numpy(layer.running_var)
    numpy.testing.assert_array_equal(mean, running[0])  # evaluation does not update them
    numpy.testing.assert_array_equal(var, running[1])
    shape = (1, 3) + (1,) * (x.ndim - 2)
    log_gamma, beta = to_numpy(layer.params["log_gamma"]), to_numpy(layer.params["beta"])
    expected = (x - mean.reshape(shape)) / numpy.sqrt(var.reshape(shape) + layer.eps)
    expected = expected * numpy.exp(log_gamma).reshape(shape) + beta.reshape(shape)
    numpy.testing.assert_allclose(z, expected, rtol=1e-13)


def test_batch_norm_training_normalizes_the_batch_and_updates_running_averages():
    x = batch("images")
    layer = BatchNorm(3, momentum=0.1, dtype=numpy.float64)
    z = to_numpy(layer.forward(to_device(x))[0])
    numpy.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    numpy.testing.assert_allclose(z.var(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)) / (x.var(axis=(0, 2, 3)) + 1e-5))
    numpy.testing.assert_allclose(to_numpy(layer.running_mean), 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-13)
    numpy.testing.assert_allclose(to_numpy(layer.running_var), 0.9 + 0.1 * x.var(axis=(0, 2, 3)), rtol=1e-13)


def test_batch_norm_running_averages_converge_to_data_statistics():
    rng = numpy.random.default_rng(0)
    layer = BatchNorm(2, momentum=0.1, dtype=numpy.float64)
    for _ in range(200):
        layer.forward(to_device(rng.standard_normal((256, 2)) * [1.0, 3.0] + [2.0, -1.0]))
    numpy.testing.assert_allclose(to_numpy(layer.running_mean), [2.0, -1.0], atol=0.05)
    numpy.testing.assert_allclose(to_numpy(layer.running_var), [1.0, 9.0], rtol=0.05)


def test_batch_norm_training_inverse_uses_last_batch_statistics():
    x = to_device(batch("images"))
    layer = randomized_layer(True)
    z_before_forward = to_device(batch("images", seed=3))
    x_running, _ = layer.inverse(z_before_forward)  # no batch seen yet: running statistics
    x_eval, _ = randomized_layer(False).inverse(z_before_forward)
    numpy.testing.assert_allclose(to_numpy(x_running), to_numpy(x_eval), rtol=1e-13)
    z, logdet = layer.forward(x)
    x_back, logdet_back = layer.inverse(z)  # exact inverse of the last training-mode forward
    numpy.testing.assert_allclose(to_numpy(x_back), to_numpy(x), atol=1e-12)
    numpy.testing.assert_allclose(to_numpy(logdet + logdet_back), 0.0, atol=1e-12)


def test_batch_norm_running_statistics_are_buffers():
    layer = BatchNorm(3, dtype=numpy.float64)
    x = to_device(batch("vectors"))
    layer.forward(x)
    saved = {k: to_numpy(v).copy() for k, v in layer.buffers().items()}  # host copies, as a checkpoint holds
    assert set(saved) == {"running_mean", "running_var"}
    fresh = Flow([BatchNorm(3, dtype=numpy.float64)])
    for name, value in saved.items():
        fresh.set_buffer(f"0.{name}", to_device(value))  # as load_checkpoint does: onto the layer's device
    numpy.testing.assert_array_equal(to_numpy(fresh[0].running_mean), saved["running_mean"])
    fresh[0].eval()
    layer.eval()
    numpy.testing.assert_array_equal(to_numpy(fresh.forward(x)[0]), to_numpy(layer.forward(x)[0]))
    with pytest.raises(ValueError, match="shape"):
        layer.set_buffer("running_mean", numpy.zeros(2))


def test_set_training_switches_every_batch_norm_in_a_model():
    flow = Flow([BatchNorm(3), Flow([BatchNorm(3)])])
    set_training(flow, False)
    assert not flow[0].training and not flow[1][0].training
    set_training(flow, True)
    assert flow[0].training and flow[1][0].training


def test_batch_norm_rejects_wrong_shape_and_bad_arguments():
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 3\)"):
        BatchNorm(3).forward(numpy.zeros((5, 4), dtype=numpy.float32))
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm(3, momentum=0.0)
    with pytest.raises(ValueError, match="eps"):
        BatchNorm(3, eps=0.0)
