"""Tests for benchmarks/torch_cfm.py and cfm_compare.py: the PyTorch twin computes the same log-density.

Skipped where PyTorch (a benchmark-only dependency) is not installed.
"""

import os
import sys

import numpy
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

from torch_cfm import TorchVelocityField, load_minflow_velocity, torch_flow_matching_loss, torch_log_prob

from minflow.backend import make_rng
from minflow.continuous import ContinuousFlowModel, VelocityField


def random_pair(rng, hidden=(32, 32)):
    field = VelocityField(2, hidden=hidden, n_fourier=8, dtype=numpy.float64, rng=make_rng(0))
    for p in field.params.values():
        p[...] = 0.3 * rng.standard_normal(p.shape)
    return field, load_minflow_velocity(TorchVelocityField(hidden=hidden, n_fourier=8).double(), field)


def test_torch_twin_log_prob_equals_minflow_in_float64(rng):
    field, twin = random_pair(rng)
    x = 2 * rng.standard_normal((200, 2))
    ours = ContinuousFlowModel(field, n_steps=12).log_prob(x)
    theirs = torch_log_prob(twin, torch.from_numpy(x), 12).numpy()
    assert numpy.abs(ours).mean() > 1.0  # a real density, not a constant
    assert numpy.abs(ours - theirs).max() < 1e-10


def test_torch_twin_loss_gradient_equals_minflow(rng):
    field, twin = random_pair(rng, hidden=(16,))
    x1, x0, t = rng.standard_normal((64, 2)), rng.standard_normal((64, 2)), rng.uniform(0, 1, 64)
    field.zero_grads()
    x_t = (1 - t)[:, None] * x0 + t[:, None] * x1
    r = field.forward(x_t, t) - (x1 - x0)
    field.backward(2 * r / 64)
    torch_flow_matching_loss(twin, *(torch.from_numpy(a) for a in (x1, x0, t))).backward()
    for g, p in zip(field.grads.values(), twin.parameters()):
        numpy.testing.assert_allclose(g.T if g.ndim == 2 else g, p.grad.numpy(), rtol=1e-10, atol=1e-12)
