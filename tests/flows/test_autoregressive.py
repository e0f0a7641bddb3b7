"""MAF and IAF layers with the affine and the spline transformers: every check in both directions
(the D-pass inverse's implicit backward included), round trips, log-dets, memory by inversion."""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import make_rng
from minflow.flows import IAF, Flow, MaskedAutoregressive
from minflow.flows.transformers import Affine, RationalQuadraticSpline

TRANSFORMERS = {
    "affine": lambda: Affine(),
    "affine-softclip": lambda: Affine("softclip", bound=1.0),
    "spline": lambda: RationalQuadraticSpline(n_bins=4, bound=3.0),
}


def _factory(cls, kind, order, dim=3, scale=0.3):
    def make(dtype):
        layer = cls(dim, TRANSFORMERS[kind](), hidden=(8, 8), order=order, dtype=dtype, rng=make_rng(1))
        return randomize_params(layer, numpy.random.default_rng(2), scale=scale)

    return make


@pytest.mark.parametrize("order", ["natural", "reversed", "random"])
@pytest.mark.parametrize("kind", list(TRANSFORMERS))
@pytest.mark.parametrize("cls", [MaskedAutoregressive, IAF])
def test_autoregressive_layer_passes_all_checks(cls, kind, order, xp):
    x = numpy.random.default_rng(3).standard_normal((5, 3))
    assert_layer_passes_all_checks(_factory(cls, kind, order), x, xp)


@pytest.mark.parametrize("kind", list(TRANSFORMERS))
def test_maf_inverse_round_trip_to_1e10_in_higher_dimension(kind):
    layer = _factory(MaskedAutoregressive, kind, "random", dim=7, scale=0.5)(numpy.float64)
    x = numpy.random.default_rng(4).standard_normal((50, 7))
    z, logdet = layer.forward(x)
    x_back, logdet_back = layer.inverse(z)
    assert numpy.max(numpy.abs(x_back - x)) < 1e-10
    assert numpy.max(numpy.abs(logdet + logdet_back)) < 1e-10


def test_maf_density_is_one_conditioner_pass_and_sampling_is_d_passes():
    layer = _factory(MaskedAutoregressive, "affine", "natural", dim=5)(numpy.float64)
    calls = []
    forward = layer.made.forward
    layer.made.forward = lambda x: calls.append(1) or forward(x)
    x = numpy.random.default_rng(5).standard_normal((4, 5))
    z, _ = layer.forward(x)
    assert len(calls) == 1
    layer.inverse(z)
    assert len(calls) == 1 + 5


@pytest.mark.parametrize("kind", list(TRANSFORMERS))
@pytest.mark.parametrize("cls", [MaskedAutoregressive, IAF])
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_autoregressive_memory_by_inversion_equals_the_cached_path(cls, kind, direction):
    x = numpy.random.default_rng(6).standard_normal((6, 3))
    upstream = numpy.random.default_rng(7).standard_normal((6, 3))
    dlogdet = numpy.random.default_rng(8).standard_normal(6)
    results = []
    for recompute in (None, "invert"):
        layers = [_factory(cls, kind, order)(numpy.float64) for order in ("natural", "reversed", "random")]
        flow = Flow(layers, recompute=recompute)
        if direction == "forward":
            flow.forward(x)
            d_input = flow.backward(upstream, dlogdet)
        else:
            flow.inverse(x)
            d_input = flow.inverse_backward(upstream, dlogdet)
        results.append((d_input, {k: g.copy() for k, g in flow.grads.items()}))
    numpy.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-9, atol=1e-12)
    for k in results[0][1]:
        numpy.testing.assert_allclose(results[1][1][k], results[0][1][k], rtol=1e-8, atol=1e-12)


def test_autoregressive_layer_rejects_images():
    layer = MaskedAutoregressive(3, Affine(), hidden=(4,), rng=make_rng(0))
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 3\); got \(2, 1, 3, 3\)"):
        layer.forward(numpy.zeros((2, 1, 3, 3), dtype=numpy.float32))
