"""Passes inside ``no_caches()`` (sampling) for every layer kind of tests/layer_registry.py.

In both directions a pass inside the block gives exactly the numbers and the
state of the same pass outside it, keeps no cache in the layer or any of its
children, and a backward after it is a clear error where the layer's
backward reads a cache; the block restores
caching when it ends, also by an exception.
"""

import numpy
import pytest
from layer_registry import KINDS, data_batch

from minflow.nn.module import no_caches

SHAPES = {"vector": (3,), "image": (4, 4, 4), "tokens": (4, 3)}
CASES = [(kind, shape) for kind in KINDS for shape in SHAPES if KINDS[kind].fits(SHAPES[shape], True)]


def _caches_left(layer):
    return [type(m).__name__ for m in layer.modules() if getattr(m, "_caches", None)]


def _state(layer):
    return {**layer.params, **layer.buffers()}


@pytest.mark.parametrize("direction", ["forward", "inverse"])
@pytest.mark.parametrize(("kind", "shape"), CASES)
def test_a_pass_without_caches_gives_the_same_numbers_and_keeps_nothing(kind, shape, direction):
    shape = SHAPES[shape]
    kept, layer = (KINDS[kind].build(shape, numpy.random.default_rng(0))[0] for _ in range(2))
    out_shape = KINDS[kind].build(shape, numpy.random.default_rng(0))[1]
    x = data_batch(shape if direction == "forward" else out_shape, numpy.random.default_rng(1), 3, kind == "logit")
    layer.release_caches()  # what building it left (ActNorm's initialising batch)
    out, logdet = getattr(kept, direction)(x)
    with no_caches():
        out_free, logdet_free = getattr(layer, direction)(x)
    numpy.testing.assert_array_equal(out_free, out)
    numpy.testing.assert_array_equal(logdet_free, logdet)
    for name, value in _state(kept).items():  # a pass that changes state (ActNorm's first batch) still does
        numpy.testing.assert_array_equal(_state(layer)[name], value, err_msg=name)
    assert not _caches_left(layer), f"{kind} kept caches in {_caches_left(layer)}"
    if _caches_left(kept):  # a layer whose backward reads a cache (not Squeeze, Reverse, ...)
        backward = layer.backward if direction == "forward" else layer.inverse_backward
        with pytest.raises(RuntimeError, match="needs the cache"):
            backward(numpy.ones_like(out), numpy.ones(out.shape[0]))


def test_caching_comes_back_after_the_block_even_after_an_error():
    layer, shape = KINDS["affine_coupling"].build((3,), numpy.random.default_rng(0))
    x = data_batch(shape, numpy.random.default_rng(1), 3)
    with pytest.raises(ValueError, match="boom"), no_caches():
        raise ValueError("boom")
    with no_caches(), no_caches():  # nested blocks
        pass
    out, _ = layer.forward(x)
    assert _caches_left(layer)
    assert layer.backward(numpy.ones_like(out), numpy.ones(3)).shape == x.shape
