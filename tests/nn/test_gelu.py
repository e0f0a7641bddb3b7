"""Tests for minflow/nn/gelu.py: GELU (tanh approximation) and its derivative."""

import math

import numpy
import pytest
from helpers import assert_block_passes_all_checks

from minflow.nn import GELU


def test_gelu_gradcheck(xp, rng):
    assert_block_passes_all_checks(lambda dtype: GELU(), rng.standard_normal((4, 3, 5)) * 2, xp)


def test_gelu_is_close_to_x_phi_x():
    x = numpy.linspace(-6, 6, 241)
    exact = numpy.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    y = GELU().forward(x)
    assert numpy.abs(y - exact).max() < 1e-3  # Hendrycks & Gimpel's stated accuracy of the tanh form
    assert y[0] == pytest.approx(0, abs=1e-6) and y[-1] == pytest.approx(6, rel=1e-6)
