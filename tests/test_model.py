"""Tests for minflow/model.py: FlowModel = a flow + a base distribution."""

import math

import numpy
import pytest
from helpers import randomize_params

from minflow.backend import get_array_module, make_rng, to_device, to_numpy
from minflow.distributions import StandardNormal
from minflow.flows import AffineCoupling, Flow
from minflow.gradcheck import numerical_gradient, relative_error
from minflow.model import FlowModel
from minflow.zoo import realnvp_2d


def small_r2(dtype=numpy.float64, learnable_scale=True):
    """A 3-coupling R2 with 8-wide hidden layers and random parameters (all non-zero)."""
    model = realnvp_2d(n_layers=3, hidden=(8, 8), learnable_scale=learnable_scale, dtype=dtype)
    return randomize_params(model, numpy.random.default_rng(0), scale=0.5)


def test_log_prob_is_base_log_prob_plus_logdet(xp, rng):
    model = small_r2().to(xp)
    x = to_device(rng.standard_normal((7, 2)), xp)
    z, logdet = model.flow.forward(x)
    expected = to_numpy(model.base.log_prob(z) + logdet)
    numpy.testing.assert_allclose(to_numpy(model.log_prob(x)), expected, rtol=1e-12)
    assert float(model.nll(x)) == pytest.approx(-expected.mean(), rel=1e-12)
    assert numpy.abs(to_numpy(logdet)).max() > 0.1  # the flow is not the identity


def test_nll_and_backward_matches_finite_differences(xp, rng):
    model = small_r2().to(xp)
    x = to_device(rng.standard_normal((16, 2)), xp)
    model.zero_grads()
    loss = model.nll_and_backward(x)
    assert float(loss) == pytest.approx(float(model.nll(x)), rel=1e-12)
    analytic = {k: to_numpy(g).copy() for k, g in model.grads.items()}
    assert set(analytic) == set(model.params) and len(analytic) == 3 * 7
    for name, p in model.params.items():
        numeric = numerical_gradient(lambda: float(model.nll(x)), p)
        err = relative_error(analytic[name], numeric)
        assert err < 1e-6, f"{name}: relative error {err:.2e}"


def test_nll_and_backward_gradients_accumulate(rng):
    model = small_r2()
    x = to_device(rng.standard_normal((5, 2)))  # on the model's (default) backend
    model.zero_grads()
    model.nll_and_backward(x)
    once = {k: to_numpy(g).copy() for k, g in model.grads.items()}
    model.nll_and_backward(x)
    for k, g in model.grads.items():
        numpy.testing.assert_allclose(to_numpy(g), 2 * once[k], rtol=1e-12)


def test_reverse_kl_and_backward_matches_finite_differences(rng):
    # U(x) = 0.5 |x - mu|^2 / sigma^2; the same base noise for every evaluation (same seed)
    mu, sigma2 = to_device(numpy.array([1.0, -0.5])), 0.7  # on the model's (default) backend

    class Quadratic:
        def energy(self, x):
            return 0.5 * ((x - mu) ** 2).sum(axis=1) / sigma2

        def grad(self, x):
            return (x - mu) / sigma2

    model = small_r2()
    model.zero_grads()
    loss = model.reverse_kl_and_backward(Quadratic(), 32, make_rng(5))
    analytic = {k: g.copy() for k, g in model.grads.items()}

    def loss_fn():
        x, log_q = model.sample_and_log_prob(32, make_rng(5))
        return float((log_q + Quadratic().energy(x)).mean())

    assert float(loss) == pytest.approx(loss_fn(), rel=1e-12)
    for name, p in model.params.items():
        err = relative_error(analytic[name], numerical_gradient(loss_fn, p))
        assert err < 1e-6, f"{name}: relative error {err:.2e}"


def test_sample_shapes_and_dtypes(xp):
    model = small_r2(numpy.float32).to(xp)
    x = model.sample(10, make_rng(0, xp))
    assert x.shape == (10, 2) and x.dtype == numpy.float32
    assert model.sample(3, make_rng(0, xp), dtype=numpy.float64).dtype == numpy.float64
    x, log_q = model.sample_and_log_prob(6, make_rng(1, xp))
    assert x.shape == (6, 2) and log_q.shape == (6,)


def test_sample_and_log_prob_agrees_with_log_prob(rng):
    model = small_r2()
    x, log_q = model.sample_and_log_prob(20, make_rng(2))
    numpy.testing.assert_allclose(to_numpy(log_q), to_numpy(model.log_prob(x)), rtol=1e-10)


def test_sample_is_inverse_of_base_noise():
    model = small_r2()
    x = model.sample(4, make_rng(9))
    z = model.base.sample(4, make_rng(9), numpy.float64)
    numpy.testing.assert_allclose(to_numpy(model.flow.forward(x)[0]), to_numpy(z), atol=1e-10)
    numpy.testing.assert_allclose(
        to_numpy(model.sample(4, make_rng(9), temperature=0.5)), to_numpy(model.flow.inverse(0.5 * z)[0])
    )


@pytest.mark.parametrize("chunk", [None, 1, 4, 7, 100])
def test_sample_in_chunks_gives_the_same_samples_and_keeps_no_caches(chunk):
    model = small_r2()
    whole = model.flow.inverse(model.base.sample(10, make_rng(3), numpy.float64))[0]
    model.sample_chunk = chunk
    numpy.testing.assert_allclose(to_numpy(model.sample(10, make_rng(3))), to_numpy(whole), rtol=1e-14, atol=1e-14)
    assert not any(getattr(m, "_caches", None) for m in model.modules())  # nothing kept for a backward
    with pytest.raises(RuntimeError):
        model.flow.inverse_backward(numpy.ones((10, 2)), numpy.ones(10))


def test_r2_samples_in_cache_sized_chunks():
    assert realnvp_2d().sample_chunk == 1024


def test_sample_rejects_bad_n():
    model = small_r2()
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            model.sample(n)


@pytest.mark.parametrize(
    "x,error,message",
    [
        (numpy.zeros((4, 3)), ValueError, r"must have shape \(N, 2\); got \(4, 3\)"),
        (numpy.zeros(4), ValueError, r"must have shape \(N, 2\); got \(4,\)"),
        (numpy.zeros((4, 2), numpy.int64), TypeError, "must be a float array; got dtype int64"),
        (numpy.array([[0.0, numpy.nan]]), ValueError, "NaN or infinite"),
        (numpy.array([[0.0, numpy.inf]]), ValueError, "NaN or infinite"),
        (numpy.zeros((0, 2)), ValueError, "empty batch"),
        ([[0.0, 1.0]], TypeError, "must be an array"),
    ],
    ids=["wrong_width", "1d", "integer", "nan", "inf", "empty", "list"],
)
def test_log_prob_rejects_bad_data(x, error, message):
    model = small_r2()
    with pytest.raises(error, match=message):
        model.log_prob(x)
    with pytest.raises(error, match=message):
        model.nll(x)


def test_bits_per_dim():
    model = FlowModel(Flow([AffineCoupling(4, [1, 1, 0, 0], hidden=(4,), rng=make_rng(0))]), StandardNormal((4,)))
    log_q = numpy.array([-4 * math.log(2), -8.0])
    numpy.testing.assert_allclose(model.bits_per_dim(log_q), [1.0, 8 / (4 * math.log(2))])
    # n_levels = 256: the bin-width term D ln 256 is 8 bits per dimension
    numpy.testing.assert_allclose(model.bits_per_dim(log_q, 256), [9.0, 8 / (4 * math.log(2)) + 8.0])


def test_set_recompute_reaches_every_flow_and_keeps_gradients(rng):
    x = to_device(rng.standard_normal((8, 2)))  # on the model's (default) backend
    grads = []
    for recompute in (None, "invert"):
        model = small_r2().set_recompute(recompute)
        assert model.flow.recompute == recompute
        model.zero_grads()
        model.nll_and_backward(x)
        grads.append({k: to_numpy(g).copy() for k, g in model.grads.items()})
    for k in grads[0]:
        numpy.testing.assert_allclose(grads[1][k], grads[0][k], rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="recompute must be one of"):
        small_r2().set_recompute("sometimes")


def test_log_prob_backward_matches_finite_differences_of_a_weighted_log_prob(rng):
    """L = sum_n w_n log q(x_n) for random weights w: dL/dtheta and dL/dx through the primitive."""
    model = small_r2()
    x, w = rng.standard_normal((7, 2)), rng.standard_normal(7)
    model.zero_grads()
    model.log_prob(x)
    dx = model.log_prob_backward(w)
    analytic = {k: g.copy() for k, g in model.grads.items()}

    def loss_fn():
        return float(w @ model.log_prob(x))

    for name, p in model.params.items():
        err = relative_error(analytic[name], numerical_gradient(loss_fn, p))
        assert err < 1e-6, f"{name}: relative error {err:.2e}"
    assert relative_error(dx, numerical_gradient(loss_fn, x)) < 1e-6


def test_sample_backward_matches_finite_differences(rng):
    """L = sum_n [a_n . x_n + w_n log q(x_n)] on fixed base noise: parameter gradients and dL/dz0."""
    model = small_r2()
    a, w = rng.standard_normal((6, 2)), rng.standard_normal(6)
    z0 = model.base.sample(6, make_rng(3), numpy.float64)
    model.zero_grads()
    model.sample_and_log_prob(6, make_rng(3))
    dz0 = model.sample_backward(a, w)
    analytic = {k: g.copy() for k, g in model.grads.items()}

    def loss_at(z):
        x, log_q = model._sample_pass(z)
        return float((a * x).sum() + w @ log_q)

    for name, p in model.params.items():
        err = relative_error(analytic[name], numerical_gradient(lambda: loss_at(z0), p))
        assert err < 1e-6, f"{name}: relative error {err:.2e}"
    assert relative_error(dz0, numerical_gradient(lambda: loss_at(z0), z0)) < 1e-6


def test_backward_primitives_need_their_pass():
    model = small_r2()
    with pytest.raises(RuntimeError, match=r"log_prob_backward\(\) needs the cache of its log_prob pass"):
        model.log_prob_backward(numpy.ones(3))
    with pytest.raises(RuntimeError, match=r"sample_backward\(\) needs the cache of its sample pass"):
        model.sample_backward(numpy.ones((3, 2)), numpy.ones(3))


def test_sample_with_log_prob_is_deprecated_but_works():
    model = small_r2()
    with pytest.warns(DeprecationWarning, match="sample_and_log_prob"):
        x_old, log_q_old = model.sample_with_log_prob(5, make_rng(4))
    x, log_q = model.sample_and_log_prob(5, make_rng(4))
    numpy.testing.assert_array_equal(x_old, x)
    numpy.testing.assert_array_equal(log_q_old, log_q)


def test_dtype_and_xp_say_where_the_parameters_live():
    assert small_r2(numpy.float32).dtype == numpy.float32 and small_r2().dtype == numpy.float64
    assert small_r2().xp is numpy
    assert small_r2(numpy.float32).sample(3).dtype == numpy.float32


def test_sampling_lands_with_the_parameters_whatever_the_generator(xp):
    # a host or a device generator: the samples are on the model's backend
    model = realnvp_2d(n_layers=2, hidden=(4,), seed=0).to(xp)
    for rng_module in (numpy, xp):
        x = model.sample(5, rng=make_rng(0, rng_module))
        x2, log_q = model.sample_and_log_prob(5, rng=make_rng(0, rng_module))
        assert all(get_array_module(a) is xp for a in (x, x2, log_q))
