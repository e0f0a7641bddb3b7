"""Tests for minflow/flows/flow.py and flows/base.py: compositions and Inverse(layer).

Flows without ``.to(xp)`` live on the default backend (MINFLOW_BACKEND): their
inputs go there with ``to_device`` and their results come back with ``to_numpy``.
"""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.flows import AdditiveCoupling, AffineCoupling, Flow, Inverse, Permutation, Reverse, half_mask, parity_mask
from minflow.nn import Linear


def make_flow(dtype):
    rng = make_rng(0)
    layers = [
        AffineCoupling(4, half_mask(4), hidden=(8,), learnable_scale=True, dtype=dtype, rng=rng),
        Permutation([2, 0, 3, 1]),
        AdditiveCoupling(4, parity_mask(4, 1), hidden=(8,), dtype=dtype, rng=rng),
        Reverse(4),
        AffineCoupling(4, parity_mask(4, 0), hidden=(8, 8), dtype=dtype, rng=rng),
    ]
    return randomize_params(Flow(layers), numpy.random.default_rng(1))


def test_flow_of_several_layers_passes_all_checks(xp, rng):
    assert_layer_passes_all_checks(make_flow, rng.standard_normal((5, 4)), xp)


def test_inverse_layer_passes_all_checks(xp, rng):
    assert_layer_passes_all_checks(lambda dtype: Inverse(make_flow(dtype)), rng.standard_normal((5, 4)), xp)


def test_inverse_of_a_coupling_passes_all_checks(xp, rng):
    def make(dtype):
        layer = AffineCoupling(3, [False, True, False], hidden=(8,), learnable_scale=True, dtype=dtype, rng=make_rng(0))
        return Inverse(randomize_params(layer, numpy.random.default_rng(2)))

    assert_layer_passes_all_checks(make, rng.standard_normal((5, 3)), xp)


def test_inverse_swaps_directions(rng):
    layer = make_flow(numpy.float64)
    x = rng.standard_normal((3, 4))
    z, logdet = layer.forward(to_device(x))
    x_inv, logdet_inv = Inverse(layer).forward(z)
    numpy.testing.assert_allclose(to_numpy(x_inv), x, atol=1e-12)
    numpy.testing.assert_allclose(to_numpy(logdet_inv), -to_numpy(logdet), atol=1e-12)
    assert Inverse(layer).params.keys() == {f"layer.{k}" for k in layer.params}


def test_flow_logdet_is_sum_of_layer_logdets(rng):
    flow = make_flow(numpy.float64)
    x = to_device(rng.standard_normal((3, 4)))
    total, h = 0.0, x
    for layer in flow.layers:
        h, ld = layer.forward(h)
        total = total + ld
    z, logdet = (to_numpy(a) for a in flow.forward(x))
    numpy.testing.assert_allclose(z, to_numpy(h), rtol=1e-12)
    numpy.testing.assert_allclose(logdet, to_numpy(total), rtol=1e-12)
    assert numpy.abs(logdet).max() > 0.1  # a real test: the log-dets are not all zero


def test_flow_steps_are_the_intermediate_values(rng):
    flow = make_flow(numpy.float64)
    x = rng.standard_normal((3, 4))
    steps = flow.forward_steps(to_device(x))
    assert len(steps) == len(flow) + 1 == 6
    numpy.testing.assert_array_equal(to_numpy(steps[0]), x)
    numpy.testing.assert_allclose(to_numpy(steps[-1]), to_numpy(flow.forward(to_device(x))[0]), rtol=1e-12)
    back = flow.inverse_steps(steps[-1])
    assert len(back) == 6
    numpy.testing.assert_allclose(to_numpy(back[-1]), x, atol=1e-12)
    numpy.testing.assert_allclose(to_numpy(back[2]), to_numpy(steps[3]), atol=1e-12)


def test_flow_params_use_layer_indices():
    flow = make_flow(numpy.float32)
    assert "0.scale" in flow.params and "4.net.linear1.W" in flow.params
    assert flow[1] is flow.layers[1]


def test_flow_rejects_non_bijections():
    with pytest.raises(TypeError, match="layer 1 is Linear"):
        Flow([Reverse(2), Linear(2, 2, rng=make_rng(0))])


def make_recomputing_flow(dtype):
    flow = make_flow(dtype)
    return Flow(flow.layers, recompute="invert")


def test_flow_recompute_invert_passes_all_checks(xp, rng):
    assert_layer_passes_all_checks(make_recomputing_flow, rng.standard_normal((5, 4)), xp)


def test_flow_recompute_invert_matches_cached_gradients(rng):
    x, dz, dlogdet = (to_device(rng.standard_normal(shape)) for shape in ((6, 4), (6, 4), 6))
    results = []
    for make in (make_flow, make_recomputing_flow):
        flow = make(numpy.float64)
        for run, run_backward, inp in [(flow.forward, flow.backward, x), (flow.inverse, flow.inverse_backward, x)]:
            flow.zero_grads()
            run(inp)
            d_inp = run_backward(dz, dlogdet)
            results.append([to_numpy(d_inp), *(to_numpy(g).copy() for g in flow.grads.values())])
    cached, recomputed = results[:2], results[2:]
    for a_list, b_list in zip(cached, recomputed):
        for a, b in zip(a_list, b_list):
            numpy.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)


def test_flow_recompute_invert_keeps_no_layer_caches(rng):
    flow = make_recomputing_flow(numpy.float64)
    flow.forward(to_device(rng.standard_normal((3, 4))))
    assert all(not getattr(layer, "_caches", None) for layer in flow.layers)
    assert all(not getattr(m, "_caches", None) for m in flow.layers[0].net.layers)


def test_flow_rejects_unknown_recompute():
    with pytest.raises(ValueError, match="recompute must be one of"):
        Flow([Reverse(2)], recompute="checkpoint")
