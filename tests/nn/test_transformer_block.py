"""Tests for minflow/nn/transformer_block.py: the pre-norm Transformer block."""

import numpy
from helpers import assert_block_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.nn import TransformerBlock


def make_block(dtype):
    return randomize_params(
        TransformerBlock(6, 2, mlp_ratio=2, dtype=dtype, rng=make_rng(0)), numpy.random.default_rng(1)
    )


def test_transformer_block_gradcheck(xp, rng):
    assert_block_passes_all_checks(make_block, rng.standard_normal((2, 4, 6)), xp)


def test_transformer_block_is_x_plus_attention_then_plus_mlp(rng):
    block = make_block(numpy.float64)
    x = rng.standard_normal((2, 4, 6))
    h = x + block.attn.forward(block.norm1.forward(x))
    numpy.testing.assert_allclose(block.forward(x), h + block.mlp.forward(block.norm2.forward(h)), rtol=1e-13)


def test_transformer_block_steps_equal_the_causal_pass(xp, rng):
    block = make_block(numpy.float64).to(xp)
    x = to_device(rng.standard_normal((2, 5, 6)), xp)
    full = to_numpy(block.forward(x))
    block.reset_kv_cache()
    steps = numpy.concatenate([to_numpy(block.step(x[:, t : t + 1])) for t in range(5)], axis=1)
    numpy.testing.assert_allclose(steps, full, rtol=1e-12, atol=1e-12)
