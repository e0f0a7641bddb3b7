"""Tests for minflow/train.py: the training loop, on R2 and on hand-made losses.

A briefly trained R2 (300 steps on gaussians8) must be a density (integrate
to 1 over a box that holds its mass), must have learned (held-out NLL down,
and still above the true entropy, as Gibbs' inequality demands), and a run
must be reproducible from its seed.
"""

import math

import numpy
import pytest

from minflow.backend import make_rng, to_device, to_numpy
from minflow.data.toy2d import get_toy
from minflow.optim import SGD, Adam
from minflow.train import TrainingDiverged, fit, fit_samples
from minflow.zoo import realnvp_2d

H_GAUSSIANS8 = 2.1374  # nats, docs/reference-problems.md section 4
BOX = 6.0  # the grid covers [-BOX, BOX]^2
CELLS = 240  # cell width 0.05, a fifth of the modes' std 0.25


@pytest.fixture(scope="module")
def trained():
    """R2 trained 300 steps on gaussians8 (batch 256, lr 3e-3); held-out NLL before and after."""
    toy = get_toy("gaussians8")
    held_out = toy.sample(5000, make_rng(123))
    model = realnvp_2d(seed=0)
    before = float(model.nll(held_out))
    history = fit_samples(model, toy.sample, 300, batch_size=256, lr=3e-3, seed=0, progress=False, log_every=50)
    after = float(model.nll(held_out))
    return model, history, before, after


def test_training_reduces_held_out_nll(trained):
    _, history, before, after = trained
    assert before == pytest.approx(3.9, abs=0.1)  # the identity: N(0, I) as the model
    assert after < before - 1.0
    assert after > H_GAUSSIANS8 - 0.05  # NLL - H = KL(p || q) >= 0, up to Monte Carlo error
    assert history["step"] == [0, 50, 100, 150, 200, 250, 299]
    assert history["loss"][-1] < history["loss"][0] - 1.0


def test_trained_r2_density_integrates_to_one(trained):
    model = trained[0]
    # the box must hold the model's mass: count the samples that fall outside it
    x = model.sample(20000, make_rng(7))
    outside = float(numpy.mean(numpy.abs(x).max(axis=1) > BOX))
    assert outside < 1e-3
    # midpoint rule over the box, in float64
    h = 2 * BOX / CELLS
    c = -BOX + h * (numpy.arange(CELLS) + 0.5)
    x0, x1 = numpy.meshgrid(c, c, indexing="ij")
    grid = numpy.stack([x0.ravel(), x1.ravel()], axis=1).astype(numpy.float32)
    mass = float(numpy.exp(to_numpy(model.log_prob(to_device(grid))).astype(numpy.float64)).sum() * h * h)
    assert mass + outside == pytest.approx(1.0, abs=1e-2)


def small_model():
    return realnvp_2d(n_layers=2, hidden=(16, 16), seed=0)


def test_fit_samples_is_reproducible_from_seed():
    toy = get_toy("gaussians8")
    runs = [
        fit_samples(small_model(), toy.sample, 20, 64, lr=1e-2, seed=s, progress=False, log_every=1) for s in (1, 1, 2)
    ]
    assert len(runs[0]["loss"]) == 20
    assert runs[0]["loss"] == runs[1]["loss"]  # identical, not merely close
    assert runs[0]["loss"] != runs[2]["loss"]


def test_fit_logs_every_n_steps_and_the_last(rng):
    model = small_model()
    x = to_device(rng.standard_normal((32, 2)).astype(numpy.float32))  # on the model's (default) backend
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    seen = []
    history = fit(
        model,
        lambda step: model.nll_and_backward(x),
        10,
        optimizer,
        log_every=4,
        progress=False,
        callback=lambda step, loss: seen.append((step, loss)),
    )
    assert history["step"] == [0, 4, 8, 9]
    assert [s for s, _ in seen] == history["step"] and [v for _, v in seen] == history["loss"]
    assert all(isinstance(v, float) for v in history["loss"])
    assert optimizer.t == 10 and history["seconds"] > 0


def test_fit_zeroes_gradients_every_step(rng):
    # SGD with lr tiny: if the loop did not zero the gradients, they would pile up step after step
    model = small_model()
    x = to_device(rng.standard_normal((16, 2)).astype(numpy.float32))  # on the model's (default) backend
    grads_seen = []

    def loss_and_backward(step):
        loss = model.nll_and_backward(x)
        grads_seen.append(to_numpy(model.grads["flow.0.net.linear2.W"]).copy())
        return loss

    fit(model, loss_and_backward, 3, SGD(model.params, model.grads, lr=1e-12), progress=False)
    numpy.testing.assert_allclose(grads_seen[2], grads_seen[0], rtol=1e-4)


def test_fit_raises_training_diverged_with_the_step(rng):
    model = small_model()
    x = to_device(rng.standard_normal((16, 2)).astype(numpy.float32))  # on the model's (default) backend

    def loss_and_backward(step):
        if step == 3:
            model.params["flow.1.net.linear0.W"][0, 0] = numpy.nan  # a parameter blows up
        return model.nll_and_backward(x)

    with pytest.raises(TrainingDiverged, match="at step 3") as err:
        fit(model, loss_and_backward, 10, Adam(model.params, model.grads), log_every=1, progress=False)
    assert "nan" in str(err.value).lower()


def test_fit_raises_training_diverged_for_an_infinite_loss():
    model = small_model()
    optimizer = SGD(model.params, model.grads)
    with pytest.raises(TrainingDiverged, match="at step 5"):
        fit(model, lambda step: math.inf if step == 5 else 1.0, 8, optimizer, log_every=5, progress=False)


def test_fit_rejects_bad_arguments():
    model = small_model()
    optimizer = SGD(model.params, model.grads)
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        fit(model, lambda step: 0.0, 0, optimizer, progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        fit_samples(model, get_toy("gaussians8").sample, 5, batch_size=0, progress=False)


def test_fit_epochs_trains_evaluates_and_resumes_to_the_same_run():
    """Two epochs at once equal one epoch, then one more from the saved history, state and generator."""
    import numpy

    from minflow.optim import Adam
    from minflow.train import fit_epochs, new_epoch_history
    from minflow.zoo import d8
    from minflow.zoo.d8 import evaluate_bpd

    images = numpy.random.default_rng(0).integers(0, 17, (12, 1, 4, 4))
    test, val = images[:4], images[4:8]

    def run(stop_after, resume=None):
        model = d8(size=4, hidden=4, n_blocks=1, dtype=numpy.float64, seed=1)
        optimizer = Adam(model.params, model.grads, lr=1e-3)
        rng = numpy.random.default_rng(2)
        history, state = new_epoch_history()
        if resume is not None:
            params, opt_state, rng_state, history, state = resume
            for k, p in model.params.items():
                p[...] = params[k]
            optimizer.load_state(opt_state)
            rng.bit_generator.state = rng_state
        calls = []
        evaluate = lambda x: evaluate_bpd(model, x, 17, n_draws=2)
        fit_epochs(
            model,
            optimizer,
            images,
            stop_after,
            rng,
            5,
            17,
            evaluate,
            test,
            val,
            history,
            state,
            on_epoch=lambda epoch, line, improved: calls.append((epoch, improved)),
            progress=False,
        )
        saved = ({k: p.copy() for k, p in model.params.items()}, optimizer.state(), rng.bit_generator.state)
        return history, state, calls, saved

    history, state, calls, _ = run(2)
    assert state["epoch"] == 2 and state["steps"] == 6 and [c[0] for c in calls] == [1, 2] and calls[0][1]
    assert len(history["train_bpd"]) == len(history["test_bpd"]) == len(history["val_bpd"]) == 2
    assert history["val_bpd"][state["best_epoch"] - 1] == state["best_val_bpd"] == min(history["val_bpd"])
    h1, s1, _, saved = run(1)
    h2, _, calls2, _ = run(2, resume=(*saved, h1, s1))
    assert [c[0] for c in calls2] == [2]
    for key in ("train_bpd", "test_bpd", "test_iw_bpd", "val_bpd"):
        numpy.testing.assert_allclose(h2[key], history[key], rtol=1e-12)
