"""Tests for minflow/nn/patchify.py: images (N, C, H, W) <-> tokens (N, T, C p p)."""

import numpy
import pytest

from minflow.backend import to_device, to_numpy
from minflow.nn import patchify, unpatchify


@pytest.mark.parametrize("p", [1, 2, 4])
def test_patchify_matches_index_formula_and_unpatchify_inverts(p, xp, rng):
    x = rng.standard_normal((2, 3, 8, 4))
    tokens = to_numpy(patchify(to_device(x, xp), p))
    t_cols = 4 // p
    assert tokens.shape == (2, (8 // p) * t_cols, 3 * p * p)
    for i in range(8 // p):
        for j in range(t_cols):
            for c in range(3):
                for a in range(p):
                    for b in range(p):
                        assert tokens[1, i * t_cols + j, c * p * p + a * p + b] == x[1, c, i * p + a, j * p + b]
    numpy.testing.assert_array_equal(to_numpy(unpatchify(to_device(tokens, xp), p, (3, 8, 4))), x)


def test_patchify_rejects_sizes_not_multiple_of_patch():
    with pytest.raises(ValueError, match="multiples of the patch size 3"):
        patchify(numpy.ones((1, 1, 8, 8)), 3)
    with pytest.raises(ValueError, match=r"expects tokens \(N, 16, 4\)"):
        unpatchify(numpy.ones((1, 64, 1)), 2, (1, 8, 8))
