"""Tests for minflow/schedule.py: WarmupCosine's factors, and an optimizer stepping with them."""

import math

import numpy
import pytest

from minflow.optim import SGD, Adam
from minflow.schedule import WarmupCosine


def test_warmup_cosine_factors_at_the_landmarks():
    s = WarmupCosine(total_steps=110, warmup_steps=10)
    assert [s(t) for t in (1, 5, 10)] == pytest.approx([0.1, 0.5, 1.0])  # linear warmup to the peak
    assert s(60) == pytest.approx(0.5)  # half way through the decay: (1 + cos(pi / 2)) / 2
    assert s(35) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert s(110) == 0.0 and s(500) == 0.0  # decayed to zero, and stays there
    factors = [s(t) for t in range(10, 111)]
    assert all(a > b for a, b in zip(factors, factors[1:]))  # strictly decreasing after the warmup
    floor = WarmupCosine(100, 0, final=0.1)
    assert floor(1) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 100)) / 2)
    assert floor(100) == pytest.approx(0.1) and floor(50) == pytest.approx(0.55)


@pytest.mark.parametrize("cls", [Adam, SGD], ids=["adam", "sgd"])
def test_optimizer_step_t_uses_lr_times_the_schedule(cls):
    """Adam with constant gradients moves each step by about its learning rate: the steps trace the schedule."""
    schedule = WarmupCosine(total_steps=12, warmup_steps=3)
    params, grads = {"w": numpy.zeros(3)}, {"w": numpy.ones(3)}
    opt = cls(params, grads, lr=0.5, schedule=schedule)
    plain_params = {"w": numpy.zeros(3)}
    plain = cls(plain_params, {"w": numpy.ones(3)}, lr=0.5)
    for t in range(1, 13):
        before, plain_before = params["w"].copy(), plain_params["w"].copy()
        opt.step()
        plain.step()
        assert opt.current_lr() == pytest.approx(0.5 * schedule(t))
        # same state (gradients constant), so the step is the unscheduled one times the factor
        step, plain_step = params["w"] - before, plain_params["w"] - plain_before
        numpy.testing.assert_allclose(step, schedule(t) * plain_step, rtol=1e-12, atol=1e-15)
    assert params["w"][0] < 0 and numpy.all(params["w"] == params["w"][0])


def test_warmup_cosine_rejects_bad_arguments():
    with pytest.raises(ValueError, match="total_steps must be a positive integer"):
        WarmupCosine(0)
    with pytest.raises(ValueError, match="warmup_steps must be an integer in"):
        WarmupCosine(10, warmup_steps=10)
    with pytest.raises(ValueError, match="final must be a factor in"):
        WarmupCosine(10, final=1.5)
    with pytest.raises(TypeError, match="schedule must be a function"):
        Adam({"w": numpy.zeros(1)}, {"w": numpy.zeros(1)}, schedule=0.5)
