"""Memory by inversion for every zoo model: ``set_recompute("invert")`` gives the cached path's numbers.

Both directions: maximum likelihood (``nll_and_backward``) and reverse KL
(``reverse_kl_and_backward``, on a quadratic energy for the image models),
in float64, from a fresh model (ActNorm's data-dependent initialisation in
the first step) and from one with every parameter moved off its
initialisation; and no backward pass changes a parameter or a buffer.
"""

import numpy
import pytest
from helpers import QuadraticEnergy, assert_backward_keeps_state, assert_recompute_matches_cached

from minflow.zoo import d8, glow_2d, glow_digits, planar_2d, radial_2d, realnvp_2d

F64 = numpy.float64
ZOO = {
    "realnvp_2d": lambda: realnvp_2d(n_layers=3, hidden=(8,), learnable_scale=True, dtype=F64, seed=1),
    "planar_2d": lambda: planar_2d(n_layers=4, dtype=F64, seed=2),
    "radial_2d": lambda: radial_2d(n_layers=4, dtype=F64, seed=3),
    "glow_2d": lambda: glow_2d(n_steps=3, hidden=(8,), dtype=F64, seed=4),
    "glow_2d_plain_additive": lambda: glow_2d(n_steps=2, hidden=(8,), mixing="plain", coupling="additive", dtype=F64),
    "glow_2d_shuffle": lambda: glow_2d(n_steps=2, hidden=(8,), mixing="shuffle", dtype=F64, seed=5),
    "d8": lambda: d8(size=4, hidden=4, n_blocks=1, learnable_scale=True, dtype=F64, seed=6),
    "glow_digits": lambda: glow_digits(steps=(2, 1), hidden=4, n_blocks=1, size=4, dtype=F64, seed=7),
    "glow_digits_additive_reverse": lambda: glow_digits(
        steps=1, hidden=4, n_blocks=1, size=4, mixing="reverse", coupling="additive", dtype=F64, seed=8
    ),
}


def _data(model, seed=0):
    rng = numpy.random.default_rng(seed)
    if model.event_shape == (2,):
        return 1.5 * rng.standard_normal((6, 2)) + 0.5
    return rng.uniform(0.02, 0.98, (3, *model.event_shape))  # dequantised pixels in [0, 1)


def _builder(name, moved):
    def build():
        model = ZOO[name]()
        if moved:  # every parameter off its initialisation (zero last layers would hide gradients)
            model.log_prob(_data(model))  # ActNorm's data-dependent initialisation
            rng = numpy.random.default_rng(11)
            for p in model.params.values():
                p += 0.1 * rng.standard_normal(p.shape)
        return model

    return build


@pytest.mark.parametrize("moved", [False, True], ids=["fresh", "moved"])
@pytest.mark.parametrize("direction", ["forward", "inverse"])
@pytest.mark.parametrize("name", ZOO)
def test_zoo_recompute_matches_cached_path(name, direction, moved):
    build = _builder(name, moved)
    model = build()
    assert_recompute_matches_cached(build, direction, _data(model, 1), QuadraticEnergy(model.event_shape, 3))


@pytest.mark.parametrize("recompute", [None, "invert"])
@pytest.mark.parametrize("direction", ["forward", "inverse"])
@pytest.mark.parametrize("name", ZOO)
def test_zoo_backward_changes_no_parameter_or_buffer(name, direction, recompute):
    model = _builder(name, moved=False)().set_recompute(recompute)
    x = _data(model, 2)
    z = numpy.random.default_rng(4).standard_normal((x.shape[0], *model.base.event_shape))
    assert_backward_keeps_state(model.flow, direction, x if direction == "forward" else z)
