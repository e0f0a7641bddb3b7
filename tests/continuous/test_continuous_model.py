"""Tests for minflow/continuous/model.py (named apart from tests/test_model.py): the likelihood of a continuous flow, its samples and checkpoints."""

import numpy
import pytest
from helpers import randomize_params

from minflow.backend import make_rng
from minflow.checkpoint import load_checkpoint, save_checkpoint
from minflow.continuous import ContinuousFlowModel, VelocityField, fit_flow_matching
from minflow.data.toy2d import get_toy
from minflow.gradcheck import brute_force_logdet
from minflow.viz import density_grid


def random_model(rng, n_steps=64, scale=0.4):
    field = VelocityField(
        2, hidden=(16, 16), n_frequencies=2, n_fourier=4, fourier_scale=1.0, dtype=numpy.float64, rng=make_rng(0)
    )
    return ContinuousFlowModel(randomize_params(field, rng, scale=scale), n_steps=n_steps)


@pytest.fixture(scope="module")
def trained():
    """A small model trained on moons for a few seconds, float64 (shared by the tests below)."""
    field = VelocityField(2, hidden=(32, 32), n_frequencies=2, n_fourier=8, dtype=numpy.float64, rng=make_rng(0))
    model = ContinuousFlowModel(field, n_steps=16)
    fit_flow_matching(model, get_toy("moons").sample, 400, batch_size=256, lr=3e-3, seed=0, progress=False)
    return model


def test_logdet_matches_slogdet_of_the_jacobian_of_the_solved_map(rng):
    model = random_model(rng)
    x = rng.standard_normal((4, 2))
    _, logdet = model.forward(x)
    brute = brute_force_logdet(lambda a: model.forward(a)[0], x)
    assert numpy.abs(brute).min() > 0.05  # the map really changes volume
    numpy.testing.assert_allclose(logdet, brute, atol=1e-6)


def test_inverse_undoes_forward_and_negates_the_logdet(rng):
    model = random_model(rng, n_steps=128)
    x = rng.standard_normal((6, 2))
    z, logdet = model.forward(x)
    x_back, logdet_inv = model.inverse(z)
    numpy.testing.assert_allclose(x_back, x, atol=1e-8)
    numpy.testing.assert_allclose(logdet_inv, -logdet, atol=1e-8)


def test_trained_density_integrates_to_one(trained):
    _, _, log_q = density_grid(trained.log_prob, (-6.0, 6.0), n=120)
    integral = numpy.exp(log_q).sum() * (12.0 / 120) ** 2
    assert abs(integral - 1.0) < 1e-2, integral


def test_trained_nll_changes_by_less_than_1e_3_nats_with_twice_the_steps(trained):
    toy = get_toy("moons")
    x = toy.sample(2000, make_rng(1), numpy.float64)
    nll = -trained.log_prob(x).mean()
    nll_2x = -trained.log_prob(x, n_steps=2 * trained.n_steps).mean()
    assert abs(nll_2x - nll) < 1e-3, (nll, nll_2x)
    assert nll - toy.entropy < 1.0  # it learned something: N(0, I) alone is about 1.5 nats worse


def test_sample_and_log_prob_agrees_with_log_prob(trained):
    x, log_q = trained.sample_and_log_prob(50, make_rng(3))
    numpy.testing.assert_allclose(trained.log_prob(x), log_q, atol=1e-3)  # two different solves of one ODE


def test_sample_keeps_dtype_and_matches_transport(trained):
    x = trained.sample(7, make_rng(2))
    assert x.shape == (7, 2) and x.dtype == numpy.float64
    z = trained.base.sample(7, make_rng(2), numpy.float64)
    path = trained.transport(z, [0.0, 0.5, 1.0])
    numpy.testing.assert_array_equal(path[0], z)
    numpy.testing.assert_allclose(path[-1], x, atol=1e-12)


def test_checkpoint_round_trip_gives_the_same_log_prob(trained, tmp_path, rng):
    path = tmp_path / "cfm.npz"
    save_checkpoint(path, trained, extra={"dataset": "moons"})
    field = VelocityField(2, hidden=(32, 32), n_frequencies=2, n_fourier=8, dtype=numpy.float64, rng=make_rng(9))
    fresh = ContinuousFlowModel(field, n_steps=16)
    assert load_checkpoint(path, fresh)["dataset"] == "moons"
    numpy.testing.assert_array_equal(fresh.velocity.B, trained.velocity.B)  # the Fourier matrix, a buffer
    x = rng.standard_normal((5, 2))
    numpy.testing.assert_array_equal(fresh.log_prob(x), trained.log_prob(x))


def test_model_rejects_bad_input(trained):
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        trained.log_prob(numpy.zeros((3, 3)))
    with pytest.raises(TypeError, match="float array"):
        trained.log_prob(numpy.zeros((3, 2), dtype=int))
    with pytest.raises(ValueError, match="NaN or infinite"):
        trained.log_prob(numpy.array([[0.0, numpy.nan]]))
    with pytest.raises(ValueError, match="multiples of 1/n_steps"):
        trained.transport(numpy.zeros((1, 2)), [0.0, 0.3])
    with pytest.raises(ValueError, match="method must be one of"):
        ContinuousFlowModel(VelocityField(2, hidden=(4,), rng=make_rng(0)), method="dopri5")
    with pytest.raises(TypeError, match="forward\\(x, t\\) and divergence"):
        ContinuousFlowModel(object())
