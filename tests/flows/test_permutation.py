"""Tests for minflow/flows/permutation.py: fixed shuffles and reversals of axis 1."""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks

from minflow.backend import to_device, to_numpy
from minflow.flows import Permutation, Reverse, random_permutation


@pytest.mark.parametrize(
    "make", [lambda dtype: Permutation([2, 0, 3, 1, 4]), lambda dtype: Reverse(5)], ids=["permutation", "reverse"]
)
def test_permutation_passes_all_checks(make, xp, rng):
    assert_layer_passes_all_checks(make, rng.standard_normal((4, 5)), xp)


def test_permutation_values_and_zero_logdet(xp):
    x = to_device(numpy.array([[10.0, 11.0, 12.0]]), xp)
    z, logdet = Permutation([2, 0, 1]).to(xp).forward(x)
    numpy.testing.assert_array_equal(to_numpy(z), [[12.0, 10.0, 11.0]])
    numpy.testing.assert_array_equal(to_numpy(logdet), [0.0])
    numpy.testing.assert_array_equal(to_numpy(Reverse(3).to(xp).forward(x)[0]), [[12.0, 11.0, 10.0]])


def test_permutation_acts_on_channels_of_images(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    layer = Permutation([1, 2, 0])
    z, logdet = layer.forward(x)
    numpy.testing.assert_array_equal(z, x[:, [1, 2, 0]])
    assert logdet.shape == (2,)
    dz = rng.standard_normal(z.shape)
    numpy.testing.assert_array_equal(layer.backward(dz, numpy.zeros(2)), dz[:, [2, 0, 1]])
    numpy.testing.assert_array_equal(layer.inverse(z)[0], x)


def test_random_permutation_reproducible_from_seed():
    a, b = random_permutation(10, seed=3), random_permutation(10, seed=3)
    numpy.testing.assert_array_equal(a, b)
    numpy.testing.assert_array_equal(numpy.sort(a), numpy.arange(10))
    assert not numpy.array_equal(a, random_permutation(10, seed=4))


@pytest.mark.parametrize("perm", [[0, 0, 1], [1, 2, 3], [[0, 1], [1, 0]]])
def test_permutation_rejects_non_permutations(perm):
    with pytest.raises(ValueError, match="permutation of range"):
        Permutation(perm)


def test_permutation_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 3, \.\.\.\); got \(2, 4\)"):
        Reverse(3).forward(numpy.zeros((2, 4)))
