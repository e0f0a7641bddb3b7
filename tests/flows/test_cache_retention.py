"""No layer's cache keeps alive more memory than the arrays it holds, for every layer kind.

A cached view of a larger array keeps that whole array alive: caching
s = params[:, 0] of a (N, 2, ...) parameter array holds t as well, unseen.
After a forward and an inverse pass of every kind of tests/layer_registry.py
(every Bijection class of minflow.flows), each buffer that a cache reaches,
other than the pass's input, must be covered by the cached arrays that view
it: their sizes add up to at least the buffer's.
"""

import numpy
import pytest
from layer_registry import KINDS, data_batch

SHAPES = {"vector": (3,), "image": (4, 4, 4), "tokens": (4, 3)}
CASES = [(kind, shape) for kind in KINDS for shape in SHAPES if KINDS[kind].fits(SHAPES[shape], True)]


def _root(a):
    """The array that owns a's memory."""
    while isinstance(a.base, numpy.ndarray):
        a = a.base
    return a


def _cached_arrays(module):
    """Every ndarray in the caches of the module and of every module inside it."""
    found = []

    def walk(value):
        if isinstance(value, numpy.ndarray):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    for sub in module.modules():
        walk(getattr(sub, "_caches", {}))
    return found


def hidden_retention(module, inp):
    """{buffer shape: bytes kept alive by the caches beyond what the cached arrays themselves hold}."""
    views = {}
    for a in _cached_arrays(module):
        if _root(a) is not _root(inp):
            views.setdefault(id(_root(a)), (_root(a), {}))[1][id(a)] = a.nbytes
    return {
        root.shape: root.nbytes - sum(sizes.values())
        for root, sizes in views.values()
        if sum(sizes.values()) < root.nbytes
    }


@pytest.mark.parametrize("direction", ("forward", "inverse"))
@pytest.mark.parametrize(("kind", "shape"), CASES)
def test_caches_keep_alive_only_the_arrays_they_hold(kind, shape, direction):
    rng = numpy.random.default_rng(0)
    layer, out_shape = KINDS[kind].build(SHAPES[shape], rng)
    if direction == "forward":
        inp = data_batch(SHAPES[shape], rng, unit_interval=kind == "logit")
        layer.forward(inp)
    else:
        inp = data_batch(out_shape, rng)
        layer.inverse(inp)
    assert hidden_retention(layer, inp) == {}
