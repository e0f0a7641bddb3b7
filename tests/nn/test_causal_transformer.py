"""Tests for minflow/nn/causal_transformer.py: embedding, causal blocks, projection; steps with the cache."""

import numpy
import pytest
from helpers import assert_block_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.nn import CausalTransformer


def make_net(dtype, n_tokens=5):
    net = CausalTransformer(3, 4, n_tokens, hidden=6, depth=2, n_heads=2, mlp_ratio=2, dtype=dtype, rng=make_rng(0))
    return randomize_params(net, numpy.random.default_rng(1))


def test_causal_transformer_gradcheck(xp, rng):
    assert_block_passes_all_checks(make_net, rng.standard_normal((2, 5, 3)), xp)


def test_causal_transformer_output_t_sees_inputs_up_to_t_only(rng):
    net = make_net(numpy.float64)
    u = rng.standard_normal((1, 5, 3))
    y = net.forward(u)
    for j in range(5):
        bumped = u.copy()
        bumped[0, j] += 1.0
        changed = numpy.abs(net.forward(bumped) - y).max(axis=2)[0] > 1e-12
        numpy.testing.assert_array_equal(changed, numpy.arange(5) >= j)


def test_causal_transformer_steps_equal_the_causal_pass(xp, rng):
    net = make_net(numpy.float64).to(xp)
    u = to_device(rng.standard_normal((3, 5, 3)), xp)
    full = to_numpy(net.forward(u))
    net.reset_kv_cache()
    steps = numpy.stack([to_numpy(net.step(u[:, t])) for t in range(5)], axis=1)
    numpy.testing.assert_allclose(steps, full, rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match="call reset_kv_cache"):
        net.step(u[:, 0])


def test_causal_transformer_zero_head_outputs_zero(rng):
    net = CausalTransformer(3, 4, 5, hidden=6, depth=1, n_heads=2, dtype=numpy.float64, rng=make_rng(0))
    assert not net.forward(rng.standard_normal((2, 5, 3))).any()
