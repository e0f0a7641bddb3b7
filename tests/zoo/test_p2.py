"""Tests for minflow/zoo/p2.py: planar and radial models over N(0, I2), and reverse-KL training."""

import numpy
import pytest
from helpers import randomize_params

from minflow.backend import make_rng, to_numpy
from minflow.data.energy import get_energy, reverse_kl
from minflow.flows.planar import Planar
from minflow.flows.radial import Radial
from minflow.gradcheck import numerical_gradient, relative_error
from minflow.zoo.p2 import P2_RECIPE, fit_reverse_kl, planar_2d, radial_2d


def test_p2_recipe():
    assert P2_RECIPE == {"batch_size": 256, "lr": 5e-3, "n_steps": 10_000}


@pytest.mark.parametrize("build, layer_class, n_params", [(planar_2d, Planar, 5), (radial_2d, Radial, 4)])
def test_p2_models_are_stacks_of_layers(build, layer_class, n_params):
    model = build(8, seed=1)
    assert len(model.flow) == 8 and all(isinstance(layer, layer_class) for layer in model.flow.layers)
    assert model.num_params() == 8 * n_params and model.event_shape == (2,)
    assert all(p.dtype == numpy.float32 for p in model.params.values())
    # reproducible from the seed, and the layers differ from each other
    again, other = build(8, seed=1), build(8, seed=2)
    assert all(numpy.array_equal(v, again.params[k]) for k, v in model.params.items())
    assert any(not numpy.array_equal(v, other.params[k]) for k, v in model.params.items())
    first = next(iter(model.params))
    assert not numpy.array_equal(model.params[first], model.params[first.replace("flow.0.", "flow.1.")])


@pytest.mark.parametrize("build", [planar_2d, radial_2d])
def test_p2_model_log_prob_agrees_with_sampling(build):
    # log q(x) through the numerical inverse equals log q of the sampling pass
    model = build(6, dtype=numpy.float64, seed=0)
    x, log_q = model.sample_and_log_prob(200, make_rng(0))
    numpy.testing.assert_allclose(to_numpy(model.log_prob(x)), to_numpy(log_q), atol=1e-9)


@pytest.mark.parametrize("build", [planar_2d, radial_2d])
def test_p2_reverse_kl_gradient_matches_finite_differences(build):
    # the whole reverse-KL loss through K layers, w.r.t. every parameter, on fixed base noise
    # (R2's reverse-KL gradient is checked in tests/test_model.py)
    model = randomize_params(build(3, dtype=numpy.float64), numpy.random.default_rng(0), scale=0.7)
    target = get_energy("U3")

    def loss():
        return float(model.reverse_kl_and_backward(target, 16, make_rng(5)))

    model.zero_grads()
    loss()
    analytic = {k: g.copy() for k, g in model.grads.items()}
    for name, p in model.params.items():
        numeric = numerical_gradient(loss, p)
        assert relative_error(analytic[name], numeric) < 1e-6, name


def test_p2_fit_reverse_kl_reduces_kl_and_is_reproducible():
    target = get_energy("U2")
    a, b = planar_2d(8, seed=0), planar_2d(8, seed=0)
    kl_before, _ = reverse_kl(a, target, n_samples=20_000)
    fit_reverse_kl(a, target, n_steps=150, progress=False)
    fit_reverse_kl(b, target, n_steps=150, progress=False)
    kl_after, stderr = reverse_kl(a, target, n_samples=20_000)
    assert kl_after < kl_before - 1.0 and kl_after > -4 * stderr
    assert all(numpy.array_equal(v, b.params[k]) for k, v in a.params.items())


def test_p2_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_layers must be a positive integer"):
        planar_2d(0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        fit_reverse_kl(planar_2d(2), get_energy("U1"), n_steps=1, batch_size=0, progress=False)
