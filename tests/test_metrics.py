"""Tests for minflow/metrics.py: bits per dimension, NLL of a data set, the losses and their gradients."""

import math

import numpy
import pytest

from minflow import metrics
from minflow.commands.digits import nll_to_bpd
from minflow.zoo.d8 import evaluate_bpd


def test_bits_per_dim_continuous_and_discrete():
    log_q = numpy.array([-4 * math.log(2), -8.0])
    numpy.testing.assert_allclose(metrics.bits_per_dim(log_q, 4), [1.0, 8 / (4 * math.log(2))])
    numpy.testing.assert_allclose(metrics.bits_per_dim(log_q, 4, 256), [9.0, 8 / (4 * math.log(2)) + 8.0])
    with pytest.raises(ValueError, match="n_levels must be a positive integer"):
        metrics.bits_per_dim(log_q, 4, 0)


def test_every_bits_per_dim_goes_through_the_one_formula():
    """The model's, D8's evaluation and the digits command's conversions agree with metrics.bits_per_dim."""
    assert nll_to_bpd(1.5) == pytest.approx(float(metrics.bits_per_dim(-1.5, 64, 17)), rel=1e-15)

    class Constant:  # log q(v) = -100 for every image
        xp, dtype, event_shape = numpy, numpy.float64, (1, 8, 8)

        def log_prob(self, v):
            return numpy.full(v.shape[0], -100.0)

    result = evaluate_bpd(Constant(), numpy.zeros((3, 1, 8, 8), dtype=int), n_draws=2)
    assert result["bpd"] == pytest.approx(float(metrics.bits_per_dim(-100.0, 64, 17)), rel=1e-14)


def test_dataset_nll_averages_over_every_sample():
    batches = [numpy.zeros((2, 1)), numpy.zeros((3, 1))]
    values = iter([numpy.array([-1.0, -2.0]), numpy.array([-3.0, -4.0, -5.0])])
    assert metrics.dataset_nll(lambda x: next(values), batches) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="no samples"):
        metrics.dataset_nll(lambda x: x, [])


def test_loss_gradients():
    log_q = numpy.array([-1.0, -2.0, -3.0, -6.0])
    loss, dlog_q = metrics.nll_and_gradient(log_q)
    assert float(loss) == 3.0 and dlog_q.tolist() == [-0.25] * 4

    class Energy:
        def energy(self, x):
            return (x**2).sum(axis=1)

        def grad(self, x):
            return 2 * x

    x = numpy.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    loss, dx, dlog_q = metrics.reverse_kl_and_gradient(x, log_q, Energy())
    assert float(loss) == pytest.approx((-12.0 + 1 + 4 + 2) / 4)
    numpy.testing.assert_array_equal(dx, 2 * x / 4)
    assert dlog_q.tolist() == [0.25] * 4
