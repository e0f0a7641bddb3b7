"""Tests for minflow/distributions.py: the standard normal base distribution."""

import math

import numpy
import pytest

from minflow.backend import make_rng, to_device, to_numpy
from minflow.distributions import StandardNormal
from minflow.gradcheck import numerical_gradient


@pytest.mark.parametrize("event_shape", [(2,), (2, 3, 3)])
def test_standard_normal_log_prob_formula(event_shape, xp, rng):
    base = StandardNormal(event_shape)
    z = rng.standard_normal((4, *event_shape))
    d = math.prod(event_shape)
    expected = [sum(-0.5 * v * v - 0.5 * math.log(2 * math.pi) for v in zn.ravel()) for zn in z]
    out = base.log_prob(to_device(z, xp))
    assert out.shape == (4,)
    numpy.testing.assert_allclose(to_numpy(out), expected, rtol=1e-12)
    assert base.dim == d


def test_standard_normal_log_prob_of_2d_matches_closed_form():
    # log N(0; 0, I2) = -ln(2 pi); keeps float32
    base = StandardNormal((2,))
    assert base.log_prob(numpy.zeros((1, 2)))[0] == pytest.approx(-math.log(2 * math.pi), rel=1e-15)
    assert base.log_prob(numpy.zeros((3, 2), numpy.float32)).dtype == numpy.float32


def test_standard_normal_score_is_gradient_of_log_prob(rng):
    base = StandardNormal((3,))
    z = rng.standard_normal((2, 3))
    numeric = numerical_gradient(lambda: float(base.log_prob(z).sum()), z)
    numpy.testing.assert_allclose(base.score(z), numeric, rtol=1e-8)
    numpy.testing.assert_array_equal(base.score(z), -z)


def test_standard_normal_sample_shape_dtype_and_moments(xp):
    base = StandardNormal((2, 2))
    s = base.sample(20000, make_rng(0, xp), numpy.float64)
    assert s.shape == (20000, 2, 2) and s.dtype == numpy.float64
    s = to_numpy(s).reshape(20000, 4)
    numpy.testing.assert_allclose(s.mean(axis=0), 0, atol=0.03)
    numpy.testing.assert_allclose(numpy.cov(s.T), numpy.eye(4), atol=0.04)
    hot = to_numpy(base.sample(20000, make_rng(1, xp), numpy.float32, temperature=0.5))
    assert hot.dtype == numpy.float32 and hot.std() == pytest.approx(0.5, rel=0.03)


def test_standard_normal_sample_reproducible_from_seed():
    base = StandardNormal((2,))
    numpy.testing.assert_array_equal(to_numpy(base.sample(5, make_rng(3))), to_numpy(base.sample(5, make_rng(3))))
