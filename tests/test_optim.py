"""Tests for minflow/optim.py: Adam and SGD against the textbook formulas written out in NumPy."""

import numpy
import pytest

from minflow.backend import to_device, to_numpy
from minflow.optim import SGD, Adam, AdamW, clip_grad_norm, global_grad_norm

N_STEPS = 5


def problem(xp, rng):
    """params, grads (same keys and shapes) on xp, and N_STEPS host gradients per parameter.

    Gradients span eight orders of magnitude so that eps matters for "tiny".
    """
    shapes = {"w": (3, 4), "b": (4,), "tiny": (2,)}
    params = {k: to_device(rng.standard_normal(s), xp) for k, s in shapes.items()}
    grads = {k: xp.zeros_like(p) for k, p in params.items()}
    sizes = {"w": 1.0, "b": 10.0, "tiny": 1e-8}
    steps = [{k: sizes[k] * rng.standard_normal(s) for k, s in shapes.items()} for _ in range(N_STEPS)]
    return params, grads, steps


def reference_adam(theta, steps, lr, b1, b2, eps, weight_decay=0.0):
    """Kingma & Ba (2015), Algorithm 1, written out; coupled L2 decay g += wd * theta."""
    theta = {k: v.copy() for k, v in theta.items()}
    m = {k: numpy.zeros_like(v) for k, v in theta.items()}
    v = {k: numpy.zeros_like(t) for k, t in theta.items()}
    for t, g_t in enumerate(steps, start=1):
        for k in theta:
            g = g_t[k] + weight_decay * theta[k]
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g**2
            m_hat = m[k] / (1 - b1**t)
            v_hat = v[k] / (1 - b2**t)
            theta[k] = theta[k] - lr * m_hat / (numpy.sqrt(v_hat) + eps)
    return theta


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_matches_textbook_formulas(weight_decay, xp, rng):
    params, grads, steps = problem(xp, rng)
    start = {k: to_numpy(p).copy() for k, p in params.items()}
    opt = Adam(params, grads, lr=0.1, betas=(0.8, 0.99), eps=1e-8, weight_decay=weight_decay)
    for values in steps:
        for k, g in grads.items():
            g[...] = to_device(values[k], xp)
        opt.step()
    expected = reference_adam(start, steps, 0.1, 0.8, 0.99, 1e-8, weight_decay)
    for k in params:
        numpy.testing.assert_allclose(to_numpy(params[k]), expected[k], rtol=1e-6, atol=1e-12, err_msg=k)
        assert numpy.abs(to_numpy(params[k]) - start[k]).max() > 1e-2  # every parameter really moved
    assert opt.t == N_STEPS


def test_weight_decay_adds_wd_times_theta(rng):
    theta = rng.standard_normal(5)
    params, grads = {"w": theta.copy()}, {"w": numpy.zeros(5)}
    SGD(params, grads, lr=0.5, weight_decay=0.1).step()
    numpy.testing.assert_allclose(params["w"], theta - 0.5 * 0.1 * theta, rtol=1e-12)
    numpy.testing.assert_allclose(grads["w"], 0.1 * theta, rtol=1e-12)  # added to the gradient, in place


def test_clip_norm_caps_the_global_norm(xp, rng):
    grads = {"a": to_device(rng.standard_normal((3, 3)), xp), "b": to_device(rng.standard_normal(4), xp)}
    before = float(global_grad_norm(grads))
    expected = numpy.sqrt(sum((to_numpy(g) ** 2).sum() for g in grads.values()))
    assert before == pytest.approx(expected, rel=1e-12)
    direction = {k: to_numpy(g) / before for k, g in grads.items()}
    returned = clip_grad_norm(grads, 0.5)
    assert float(returned) == pytest.approx(before)
    assert float(global_grad_norm(grads)) == pytest.approx(0.5, rel=1e-5)
    for k, g in grads.items():  # same direction, shorter
        numpy.testing.assert_allclose(to_numpy(g) / 0.5, direction[k], rtol=1e-5)
    clip_grad_norm(grads, 10.0)  # below the cap: unchanged
    assert float(global_grad_norm(grads)) == pytest.approx(0.5, rel=1e-5)


def test_optimizer_clip_norm_limits_the_step(rng):
    theta = rng.standard_normal(4)
    params, grads = {"w": theta.copy()}, {"w": 100 * rng.standard_normal(4)}
    SGD(params, grads, lr=1.0, clip_norm=2.0).step()
    assert numpy.linalg.norm(params["w"] - theta) == pytest.approx(2.0, rel=1e-5)


def test_sgd_momentum_matches_formula(rng):
    params, grads, steps = problem(numpy, rng)
    theta = {k: p.copy() for k, p in params.items()}
    velocity = {k: numpy.zeros_like(p) for k, p in params.items()}
    opt = SGD(params, grads, lr=0.1, momentum=0.9)
    for values in steps:
        for k in grads:
            grads[k][...] = values[k]
            velocity[k] = 0.9 * velocity[k] + values[k]
            theta[k] = theta[k] - 0.1 * velocity[k]
        opt.step()
    for k in params:
        numpy.testing.assert_allclose(params[k], theta[k], rtol=1e-12)


def test_step_updates_in_place_and_never_zeroes_gradients(rng):
    params, grads, steps = problem(numpy, rng)
    arrays = dict(params)
    for k in grads:
        grads[k][...] = steps[0][k]
    Adam(params, grads).step()
    assert all(params[k] is arrays[k] for k in params)
    numpy.testing.assert_array_equal(grads["w"], steps[0]["w"])


@pytest.mark.parametrize("cls", [Adam, lambda p, g: SGD(p, g, momentum=0.9)], ids=["adam", "sgd"])
def test_state_and_load_state_round_trip(cls, rng):
    params, grads, steps = problem(numpy, rng)
    opt = cls(params, grads)
    for values in steps[:3]:
        for k in grads:
            grads[k][...] = values[k]
        opt.step()
    saved = {k: numpy.array(v) for k, v in opt.state().items()}  # copies, as a checkpoint would hold
    twin_params = {k: p.copy() for k, p in params.items()}
    twin_grads = {k: g.copy() for k, g in grads.items()}
    twin = cls(twin_params, twin_grads)
    twin.load_state(saved)
    assert twin.t == opt.t == 3
    for values in steps[3:]:
        for g_dict in (grads, twin_grads):
            for k in g_dict:
                g_dict[k][...] = values[k]
        opt.step()
        twin.step()
    for k in params:
        numpy.testing.assert_array_equal(twin_params[k], params[k])


def test_optimizer_rejects_bad_arguments():
    params, grads = {"w": numpy.zeros(2)}, {"w": numpy.zeros(2)}
    with pytest.raises(ValueError, match="same keys"):
        Adam(params, {"v": numpy.zeros(2)})
    with pytest.raises(ValueError, match="lr must be positive"):
        Adam(params, grads, lr=0)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        SGD(params, grads, weight_decay=-1)
    with pytest.raises(ValueError, match="clip_norm must be positive"):
        SGD(params, grads, clip_norm=0)


@pytest.mark.parametrize("clip_norm", [None, 0.5])
def test_adamw_shrinks_then_steps_on_the_plain_gradient(clip_norm, rng):
    """AdamW = theta * (1 - lr * wd), then Adam's step without decay (Loshchilov & Hutter 2019, Algorithm 2)."""
    params, grads, steps = problem(numpy, rng)
    twin_params = {k: p.copy() for k, p in params.items()}
    twin_grads = {k: numpy.zeros_like(p) for k, p in params.items()}
    opt = AdamW(params, grads, lr=0.1, betas=(0.8, 0.99), weight_decay=0.3, clip_norm=clip_norm)
    plain = Adam(twin_params, twin_grads, lr=0.1, betas=(0.8, 0.99), clip_norm=clip_norm)
    for values in steps:
        for k in grads:
            grads[k][...] = values[k]
            twin_grads[k][...] = values[k]
            twin_params[k] *= 1 - 0.1 * 0.3  # the decoupled decay, then the same Adam step
        opt.step()
        plain.step()
    for k in params:
        numpy.testing.assert_allclose(params[k], twin_params[k], rtol=1e-12, err_msg=k)
        numpy.testing.assert_array_equal(grads[k], twin_grads[k])  # the decay never touched the gradient


def test_adamw_decay_follows_the_schedule(rng):
    from minflow.schedule import WarmupCosine

    schedule = WarmupCosine(4, 2, final=0.2)  # not symmetric: a step off by one changes the product
    theta = rng.standard_normal(3)
    params, grads = {"w": theta.copy()}, {"w": numpy.zeros(3)}  # zero gradient: only the decay moves theta
    opt = AdamW(params, grads, lr=0.1, weight_decay=0.5, schedule=schedule)
    for _ in range(4):
        opt.step()
    factor = numpy.prod([1 - 0.1 * 0.5 * schedule(t) for t in range(1, 5)])
    numpy.testing.assert_allclose(params["w"], factor * theta, rtol=1e-12)
