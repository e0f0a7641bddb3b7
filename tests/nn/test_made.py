"""MaskedLinear and MADE: gradients through the masks, and a Jacobian strictly triangular in the chosen order."""

import numpy
import pytest
from helpers import assert_block_passes_all_checks, randomize_params

from minflow.backend import make_rng
from minflow.nn import MADE, MaskedLinear


def test_masked_linear_passes_all_checks(xp):
    mask = numpy.random.default_rng(0).random((4, 3)) > 0.4

    def make(dtype):
        return randomize_params(MaskedLinear(mask, dtype=dtype, rng=make_rng(0)), numpy.random.default_rng(1))

    assert_block_passes_all_checks(make, numpy.random.default_rng(2).standard_normal((5, 4)), xp)


def test_masked_linear_starts_and_stays_masked():
    mask = numpy.array([[True, False], [False, True]])
    layer = MaskedLinear(mask, dtype=numpy.float64, rng=make_rng(0))
    assert numpy.all(layer.params["W"][~mask] == 0)
    layer.forward(numpy.ones((3, 2)))
    layer.backward(numpy.ones((3, 2)))
    assert numpy.all(layer.grads["W"][~mask] == 0)


@pytest.mark.parametrize("order", ["natural", "reversed", "random"])
def test_made_passes_all_checks(order, xp):
    def make(dtype):
        return randomize_params(
            MADE(4, (7, 6), n_params=3, order=order, dtype=dtype, rng=make_rng(1)), numpy.random.default_rng(3)
        )

    assert_block_passes_all_checks(make, numpy.random.default_rng(4).standard_normal((5, 4)), xp)


@pytest.mark.parametrize("order", ["natural", "reversed", "random", [2, 4, 1, 3]])
def test_made_jacobian_is_strictly_triangular_in_its_order(order):
    d, p = 4, 3
    made = randomize_params(
        MADE(d, (30, 30), n_params=p, order=order, dtype=numpy.float64, rng=make_rng(5)), numpy.random.default_rng(6)
    )
    x = numpy.random.default_rng(7).standard_normal((1, d))
    rows = []
    for o in range(p * d):  # d out_o / d x by backward with a one-hot upstream (ReLU nets: exact)
        made.forward(x)
        dy = numpy.zeros((1, p * d))
        dy[0, o] = 1.0
        rows.append(made.backward(dy)[0])
    jac = numpy.array(rows).reshape(p, d, d)  # [param, output variable, input variable]
    allowed = made.degrees[None, :] < made.degrees[:, None]  # [output variable, input variable]
    assert numpy.all(jac[:, ~allowed] == 0), "an output depends on an input at or after it in the order"
    assert numpy.any(jac[:, allowed] != 0)
    # the dependence really is there for a random network: every allowed pair is reached by some parameter
    assert numpy.all(numpy.abs(jac).max(axis=0)[allowed] > 0)


def test_made_rejects_an_order_that_is_not_a_permutation():
    with pytest.raises(ValueError, match="permutation of 1..3"):
        MADE(3, (4,), order=[1, 1, 2], rng=make_rng(0))
    with pytest.raises(ValueError, match="order must be one of"):
        MADE(3, (4,), order="sideways", rng=make_rng(0))
