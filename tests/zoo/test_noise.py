"""Tests for minflow/zoo/noise.py: Gaussian noise in logit space and the Tweedie denoising step."""

import numpy
import pytest
from helpers import randomize_params

from minflow.flows import Logit
from minflow.zoo import tarflow_digits
from minflow.zoo.noise import LogitNoise, denoise, logit_space_model, noisy_bpd, sample_denoised


def tiny():
    model = tarflow_digits(blocks=2, hidden=4, depth=1, n_heads=2, mlp_ratio=2, size=4, dtype=numpy.float64)
    return randomize_params(model, numpy.random.default_rng(0), scale=0.3)


def test_logit_space_model_shares_the_weights_and_splits_the_density(rng):
    model = tiny()
    logit, y_model = logit_space_model(model)
    assert logit is model.flow.layers[0] and y_model.num_params() == model.num_params()
    v = rng.uniform(0.05, 0.95, size=(3, 1, 4, 4))
    y, logdet = Logit(0.05).forward(v)
    # log q(v) = log p(y) + log |dy/dv|
    numpy.testing.assert_allclose(model.log_prob(v), y_model.log_prob(y) + logdet, rtol=0, atol=1e-12)
    model.params[next(iter(model.params))][...] += 0.1  # one set of weights
    numpy.testing.assert_allclose(model.log_prob(v), y_model.log_prob(y) + logdet, rtol=0, atol=1e-12)


def test_denoise_is_tweedie_with_the_finite_difference_score(rng):
    _, y_model = logit_space_model(tiny())
    y = rng.normal(size=(2, 1, 4, 4))
    sigma, h = 0.3, 1e-5
    score = numpy.zeros_like(y)
    for index in numpy.ndindex(y.shape[1:]):
        e = numpy.zeros_like(y)
        e[(slice(None), *index)] = h
        score[(slice(None), *index)] = (y_model.log_prob(y + e) - y_model.log_prob(y - e)) / (2 * h)
    y_hat = denoise(y_model, y, sigma)
    step = y_hat - y
    assert numpy.abs(score).max() > 0.1  # a real score, not zero
    assert numpy.linalg.norm(step - sigma**2 * score) / numpy.linalg.norm(sigma**2 * score) < 1e-6
    assert all(float(numpy.abs(g).max()) == 0.0 for g in y_model.grads.values())  # weights' gradients left at zero


def test_logit_noise_is_gaussian_in_logit_space(rng):
    noise = LogitNoise(0.05, 0.2)
    v = rng.uniform(0, 1, size=(4000, 1, 4, 4))
    v_noisy = noise(v, numpy.random.default_rng(1))
    logit = Logit(0.05)
    eps = (logit.forward(v_noisy)[0] - logit.forward(v)[0]) / 0.2
    assert abs(eps.mean()) < 0.01 and abs(eps.std() - 1) < 0.01
    assert v_noisy.min() > -0.05 / 0.9 and v_noisy.max() < 0.95 / 0.9  # the logit's domain
    assert v_noisy.min() < 0 and v_noisy.max() > 1  # wider than [0, 1]
    with pytest.raises(ValueError, match="sigma must be > 0"):
        LogitNoise(0.05, 0.0)


def test_sample_denoised_and_noisy_bpd(rng):
    model = tiny()
    v, v_hat = sample_denoised(model, 5, 0.3, rng=numpy.random.default_rng(0))
    assert v.shape == v_hat.shape == (5, 1, 4, 4)
    assert 0 <= v_hat.min() and v_hat.max() <= 1 and numpy.abs(v - v_hat).max() > 1e-3
    images = rng.integers(0, 17, size=(6, 1, 4, 4))
    assert numpy.isfinite(noisy_bpd(model, images, 0.3, n_draws=2))


def test_logit_space_model_needs_a_logit_first():
    model = tiny()
    model.flow.layers.reverse()
    with pytest.raises(ValueError, match="first layer is Logit"):
        logit_space_model(model)
