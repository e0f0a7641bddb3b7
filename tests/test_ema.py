"""Tests for minflow/ema.py: the average against its recurrence, the swap in and out, checkpoint state."""

import numpy
import pytest

from minflow.backend import to_device, to_numpy
from minflow.ema import EMA
from minflow.optim import SGD, Adam


def stepped(xp, rng, n_steps, decay=0.9):
    """An EMA over SGD on two parameters after n_steps random gradients; and the host trajectory."""
    params = {"w": to_device(rng.standard_normal((2, 3)), xp), "b": to_device(rng.standard_normal(3), xp)}
    grads = {k: xp.zeros_like(p) for k, p in params.items()}
    ema = EMA(SGD(params, grads, lr=0.1), decay)
    trajectory = [{k: to_numpy(p).copy() for k, p in params.items()}]
    for _ in range(n_steps):
        for g in grads.values():
            g[...] = to_device(rng.standard_normal(g.shape), xp)
        ema.step()
        trajectory.append({k: to_numpy(p).copy() for k, p in params.items()})
    return ema, params, trajectory


def test_ema_is_the_normalised_exponentially_weighted_sum_of_the_iterates(xp, rng):
    # theta_bar_n = sum_{i=1..n} d^(n - i) theta_i / sum_{i=1..n} d^(n - i)   (theta_0 has no weight)
    d, n = 0.9, 6
    ema, params, trajectory = stepped(xp, rng, n, d)
    weights = numpy.array([d ** (n - i) for i in range(1, n + 1)])
    average = ema.average()
    for k in params:
        expected = sum(w * trajectory[i][k] for i, w in zip(range(1, n + 1), weights)) / weights.sum()
        numpy.testing.assert_allclose(to_numpy(average[k]), expected, rtol=1e-12)
        assert numpy.abs(expected - trajectory[-1][k]).max() > 1e-2  # the average is not the last iterate
    assert ema.t == ema.n == n and ema.lr == 0.1


def test_ema_of_constant_weights_is_those_weights(rng):
    """After one step, or of parameters that stop moving, the average is the parameters (no pull to zero)."""
    params, grads = {"w": rng.standard_normal(3)}, {"w": numpy.zeros(3)}
    ema = EMA(SGD(params, grads, lr=0.1), 0.999)
    numpy.testing.assert_array_equal(ema.average()["w"], params["w"])  # before any step
    for _ in range(3):
        ema.step()  # zero gradient: theta stays
    numpy.testing.assert_allclose(ema.average()["w"], params["w"], rtol=1e-12)


def test_averaged_swaps_the_average_in_and_the_weights_back(xp, rng):
    ema, params, trajectory = stepped(xp, rng, 4)
    arrays = dict(params)
    with ema.averaged():
        for k in params:
            numpy.testing.assert_allclose(to_numpy(params[k]), to_numpy(ema.average()[k]), rtol=1e-14)
    for k in params:
        assert params[k] is arrays[k]  # the layers' arrays, changed in place
        numpy.testing.assert_array_equal(to_numpy(params[k]), trajectory[-1][k])
    with pytest.raises(RuntimeError), ema.averaged():  # the weights come back after an error too
        raise RuntimeError
    numpy.testing.assert_array_equal(to_numpy(params["w"]), trajectory[-1]["w"])


def test_ema_state_round_trip_continues_identically(rng):
    params = {"w": rng.standard_normal(4)}
    grads = {"w": numpy.zeros(4)}
    ema = EMA(Adam(params, grads, lr=0.1), 0.8)
    grad_steps = [rng.standard_normal(4) for _ in range(5)]
    for g in grad_steps[:2]:
        grads["w"][...] = g
        ema.step()
    saved = {k: numpy.array(v) for k, v in ema.state().items()}
    assert set(saved) == {"m.w", "v.w", "t", "ema.w", "ema_n"}
    twin_params, twin_grads = {"w": params["w"].copy()}, {"w": numpy.zeros(4)}
    twin = EMA(Adam(twin_params, twin_grads, lr=0.1), 0.8)
    twin.load_state(saved)
    for g in grad_steps[2:]:
        grads["w"][...] = g
        twin_grads["w"][...] = g
        ema.step()
        twin.step()
    numpy.testing.assert_array_equal(twin.average()["w"], ema.average()["w"])
    assert twin.n == ema.n == 5
    numpy.testing.assert_array_equal(twin_params["w"], params["w"])


def test_ema_rejects_bad_arguments():
    opt = SGD({"w": numpy.zeros(1)}, {"w": numpy.zeros(1)})
    with pytest.raises(ValueError, match="decay must be in"):
        EMA(opt, 1.0)
    with pytest.raises(TypeError, match="wraps an optimizer"):
        EMA({"w": numpy.zeros(1)})
