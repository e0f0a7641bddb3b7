"""Tests for minflow/nn/feed_forward.py: the Transformer's token-wise MLP block."""

import numpy
from helpers import assert_block_passes_all_checks, randomize_params

from minflow.backend import make_rng
from minflow.nn import FeedForward


def test_feed_forward_gradcheck(xp, rng):
    def make(dtype):
        return randomize_params(FeedForward(4, ratio=2, dtype=dtype, rng=make_rng(0)), numpy.random.default_rng(1))

    assert_block_passes_all_checks(make, rng.standard_normal((2, 3, 4)), xp)


def test_feed_forward_works_token_by_token(rng):
    ff = randomize_params(FeedForward(4, dtype=numpy.float64, rng=make_rng(0)), numpy.random.default_rng(1))
    x = rng.standard_normal((2, 3, 4))
    y = ff.forward(x)
    for t in range(3):
        numpy.testing.assert_allclose(ff.forward(x[:, t]), y[:, t], rtol=1e-13, atol=1e-13)
