"""Tests for minflow/continuous/flow_matching.py: the conditional flow matching loss and its gradient."""

import numpy
from helpers import randomize_params

from minflow.backend import make_rng
from minflow.continuous import ContinuousFlowModel, VelocityField, fit_flow_matching, flow_matching_loss_and_backward
from minflow.data.toy2d import get_toy
from minflow.gradcheck import numerical_gradient, relative_error


def test_loss_is_the_mean_squared_error_to_x1_minus_x0(rng):
    field = randomize_params(VelocityField(2, hidden=(8,), n_frequencies=2, dtype=numpy.float64, rng=make_rng(0)), rng)
    x1 = rng.standard_normal((5, 2))
    loss = flow_matching_loss_and_backward(field, x1, make_rng(7))
    draw = make_rng(7)  # the same draws, written out
    x0 = draw.standard_normal((5, 2))
    t = draw.uniform(0.0, 1.0, size=5)
    x_t = (1 - t)[:, None] * x0 + t[:, None] * x1
    expected = ((field.forward(x_t, t) - (x1 - x0)) ** 2).sum(axis=1).mean()
    numpy.testing.assert_allclose(loss, expected, rtol=1e-14)


def test_loss_gradient_matches_central_differences_for_every_parameter(rng):
    field = randomize_params(
        VelocityField(2, hidden=(6, 5), n_frequencies=2, dtype=numpy.float64, rng=make_rng(0)), rng
    )
    x1 = rng.standard_normal((4, 2))

    def loss():
        return float(flow_matching_loss_and_backward(field, x1, make_rng(3)))  # same noise and times every call

    field.zero_grads()
    loss()
    analytic = {name: g.copy() for name, g in field.grads.items()}
    for name, p in field.params.items():
        numeric = numerical_gradient(loss, p)
        error = relative_error(analytic[name], numeric)
        assert error < 1e-6, f"d loss / d {name}: relative error {error:.2e}"


def test_training_lowers_the_loss_and_the_nll():
    toy = get_toy("gaussians8")
    model = ContinuousFlowModel(VelocityField(2, hidden=(32, 32), n_frequencies=2, rng=make_rng(0)), n_steps=8)
    test = toy.sample(1000, make_rng(1))
    nll_before = float(-model.log_prob(test).mean())
    history = fit_flow_matching(model, toy.sample, 300, batch_size=256, lr=3e-3, seed=0, progress=False, log_every=10)
    nll_after = float(-model.log_prob(test).mean())
    assert numpy.mean(history["loss"][-5:]) < 0.8 * numpy.mean(history["loss"][:3])
    assert nll_after < nll_before - 0.5, (nll_before, nll_after)
