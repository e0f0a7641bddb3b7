"""Tests for minflow/nn/attention.py: causal multi-head self-attention, its backward and its key/value cache."""

import math

import numpy
import pytest
from helpers import assert_block_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.nn import CausalSelfAttention


def make_attention(dtype, dim=6, n_heads=2):
    return randomize_params(
        CausalSelfAttention(dim, n_heads, dtype=dtype, rng=make_rng(0)), numpy.random.default_rng(1)
    )


@pytest.mark.parametrize("n_heads", [1, 2, 3])
def test_attention_gradcheck(n_heads, xp, rng):
    assert_block_passes_all_checks(lambda dtype: make_attention(dtype, 6, n_heads), rng.standard_normal((2, 5, 6)), xp)


def naive_attention(att, x):
    """The formula token by token, head by head, with Python loops (float64, host)."""
    w_qkv, b_qkv = att.params["qkv.W"], att.params["qkv.b"]
    w_o, b_o = att.params["out.W"], att.params["out.b"]
    n, t, k = x.shape
    dh = k // att.n_heads
    y = numpy.zeros_like(x)
    for s in range(n):
        qkv = x[s] @ w_qkv + b_qkv  # (T, 3K)
        heads = []
        for h in range(att.n_heads):
            q = qkv[:, h * dh : (h + 1) * dh]
            kk = qkv[:, k + h * dh : k + (h + 1) * dh]
            v = qkv[:, 2 * k + h * dh : 2 * k + (h + 1) * dh]
            o = numpy.zeros((t, dh))
            for i in range(t):
                scores = numpy.array([q[i] @ kk[j] / math.sqrt(dh) for j in range(i + 1)])  # past and self only
                weights = numpy.exp(scores - scores.max())
                weights /= weights.sum()
                o[i] = sum(weights[j] * v[j] for j in range(i + 1))
            heads.append(o)
        y[s] = numpy.concatenate(heads, axis=1) @ w_o + b_o
    return y


def test_attention_matches_the_formula_written_with_loops(rng):
    att = make_attention(numpy.float64)
    x = rng.standard_normal((2, 5, 6))
    numpy.testing.assert_allclose(att.forward(x), naive_attention(att, x), rtol=1e-12, atol=1e-12)


def test_attention_is_causal(rng):
    # output i changes with input j only where j <= i
    att = make_attention(numpy.float64)
    x = rng.standard_normal((1, 5, 6))
    y = att.forward(x)
    for j in range(5):
        bumped = x.copy()
        bumped[0, j] += 1.0
        changed = numpy.abs(att.forward(bumped) - y).max(axis=2)[0] > 1e-12  # (T,)
        numpy.testing.assert_array_equal(changed, numpy.arange(5) >= j)


def test_attention_kv_cache_steps_equal_the_causal_pass(xp, rng):
    att = make_attention(numpy.float64).to(xp)
    x = to_device(rng.standard_normal((3, 7, 6)), xp)
    full = to_numpy(att.forward(x))
    att.reset_kv_cache()
    steps = [to_numpy(att.step(x[:, t : t + 1])) for t in range(7)]
    numpy.testing.assert_allclose(numpy.concatenate(steps, axis=1), full, rtol=1e-12, atol=1e-12)
    assert att.kv_cache[0].shape == (3, 2, 7, 3)
    att.reset_kv_cache()
    numpy.testing.assert_allclose(to_numpy(att.step(x[:, :1])), full[:, :1], rtol=1e-12, atol=1e-12)


def test_attention_rejects_bad_shapes():
    with pytest.raises(ValueError, match="features divisible by n_heads"):
        CausalSelfAttention(6, 4, rng=make_rng(0))
    with pytest.raises(ValueError, match=r"expects x of shape \(N, T, 6\)"):
        CausalSelfAttention(6, 2, rng=make_rng(0)).forward(numpy.ones((2, 6), numpy.float32))
