"""Tests for minflow/nn/positional_embedding.py: y[:, t] = x[:, t] + P[t]."""

import numpy
import pytest
from helpers import assert_block_passes_all_checks

from minflow.backend import make_rng
from minflow.nn import PositionalEmbedding


@pytest.mark.parametrize("length", [5, 3], ids=["full", "shorter"])
def test_positional_embedding_gradcheck(length, xp, rng):
    x = rng.standard_normal((2, length, 4))
    assert_block_passes_all_checks(lambda dtype: PositionalEmbedding(5, 4, dtype=dtype, rng=make_rng(0)), x, xp)


def test_positional_embedding_adds_row_t_and_forward_at_agrees(rng):
    emb = PositionalEmbedding(5, 4, dtype=numpy.float64, rng=make_rng(0))
    x = rng.standard_normal((2, 5, 4))
    y = emb.forward(x)
    numpy.testing.assert_allclose(y - x, numpy.broadcast_to(emb.params["P"], x.shape), rtol=1e-12, atol=1e-15)
    for t in range(5):
        numpy.testing.assert_array_equal(emb.forward_at(x[:, t : t + 1], t), y[:, t : t + 1])


def test_positional_embedding_rejects_too_long_a_sequence():
    with pytest.raises(ValueError, match="with T <= 5"):
        PositionalEmbedding(5, 4, rng=make_rng(0)).forward(numpy.ones((1, 6, 4), numpy.float32))
