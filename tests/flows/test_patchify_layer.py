"""Tests for minflow/flows/patchify.py: images to tokens as a flow layer, log-det 0."""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks

from minflow.flows import Patchify


@pytest.mark.parametrize("patch", [1, 2])
def test_patchify_layer_passes_all_checks(patch, xp, rng):
    assert_layer_passes_all_checks(lambda dtype: Patchify(patch, (2, 4, 4)), rng.standard_normal((2, 2, 4, 4)), xp)


def test_patchify_layer_shapes_and_error():
    layer = Patchify(2, (1, 8, 8))
    assert (layer.n_tokens, layer.token_features) == (16, 4)
    assert layer.forward(numpy.zeros((3, 1, 8, 8)))[0].shape == (3, 16, 4)
    with pytest.raises(ValueError, match="multiples of 3"):
        Patchify(3, (1, 8, 8))
