"""Tests for minflow/flows/preprocessing.py: dequantisation and the logit transform."""

import math

import numpy
import pytest
from helpers import assert_layer_passes_all_checks

from minflow.backend import get_array_module, make_rng, to_device
from minflow.flows.preprocessing import Logit, dequantize


@pytest.mark.parametrize("alpha", [0.05, 0.0])
def test_logit_passes_all_checks(alpha, xp, rng):
    # input gradients both ways, log-det vs the 16x16 Jacobian, round trips, on 1x4x4 images in (0, 1)
    v = rng.uniform(0.02, 0.98, size=(3, 1, 4, 4))
    assert_layer_passes_all_checks(lambda dtype: Logit(alpha), v, xp)


def test_logit_formula(rng):
    v = rng.uniform(0, 1, size=(4, 1, 2, 2))
    y, logdet = Logit(0.05).forward(v)
    p = 0.05 + 0.9 * v
    numpy.testing.assert_allclose(y, numpy.log(p / (1 - p)), rtol=1e-12)
    expected = (numpy.log(0.9) - numpy.log(p) - numpy.log(1 - p)).sum(axis=(1, 2, 3))
    numpy.testing.assert_allclose(logdet, expected, rtol=1e-12)


def test_logit_edges_stay_finite():
    # a = 0.05 keeps v = 0 and v = 1 away from the poles of the logit
    y, logdet = Logit(0.05).forward(numpy.array([[0.0, 1.0]], dtype=numpy.float32))
    numpy.testing.assert_allclose(y, [[math.log(0.05 / 0.95), math.log(0.95 / 0.05)]], rtol=1e-6)
    assert numpy.isfinite(logdet).all()


def test_logit_inverse_logdet_stable_for_large_inputs():
    _, logdet = Logit(0.05).inverse(numpy.array([[200.0, -200.0]]))
    assert numpy.isfinite(logdet).all()


def test_logit_rejects_bad_alpha():
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 0.5\)"):
        Logit(0.5)


def test_dequantize_range_and_logdet(rng):
    x = rng.integers(0, 17, size=(500, 1, 8, 8))
    v, logdet = dequantize(x, 17, make_rng(0))
    assert v.dtype == numpy.float32 and v.shape == x.shape
    assert (v >= x / 17).all() and (v < (x + 1) / 17 + 1e-7).all()
    numpy.testing.assert_allclose(logdet, numpy.full(500, -64 * math.log(17)), rtol=1e-6)
    # the noise is uniform on [0, 1): mean 1/2, variance 1/12
    u = v.astype(numpy.float64) * 17 - x
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002


def test_dequantize_same_rng_seed_same_draws(rng):
    x = rng.integers(0, 17, size=(4, 1, 8, 8))
    numpy.testing.assert_array_equal(dequantize(x, 17, make_rng(3))[0], dequantize(x, 17, make_rng(3))[0])
    assert (dequantize(x, 17, make_rng(3))[0] != dequantize(x, 17, make_rng(4))[0]).any()


def test_dequantize_follows_the_images_not_the_generator(xp, rng):
    # the noise is drawn where the generator lives and handed back in the images' module:
    # every pairing of host and device (the digits command draws on the host for images on either)
    images = rng.integers(0, 17, size=(3, 1, 8, 8))
    for x_module in (numpy, xp):
        x = to_device(images, x_module)
        for rng_module in (numpy, xp):
            v, logdet = dequantize(x, 17, make_rng(0, rng_module))
            assert get_array_module(v) is x_module and get_array_module(logdet) is x_module


def test_dequantize_rejects_float_images():
    with pytest.raises(TypeError, match="integer pixels"):
        dequantize(numpy.zeros((2, 1, 8, 8)), 17, make_rng(0))
