"""Tests for minflow/zoo/d8.py: the D8 multi-scale RealNVP of docs/reference-problems.md."""

import math

import numpy
import pytest
from helpers import randomize_params

from minflow.backend import to_device, to_numpy
from minflow.data.digits import load_digits
from minflow.flows import Flow
from minflow.flows.factor_out import FactorOut
from minflow.flows.image_coupling import ImageAffineCoupling
from minflow.flows.image_masks import channel_mask, checkerboard_mask
from minflow.flows.preprocessing import Logit, dequantize
from minflow.flows.squeeze import Squeeze
from minflow.gradcheck import brute_force_logdet, check_gradients
from minflow.nn.conv2d import Conv2d
from minflow.zoo.d8 import D8_PARAMETERS, d8, evaluate_bpd


def test_d8_has_the_reference_parameter_count():
    model = d8()
    assert model.num_params() == D8_PARAMETERS == 384_962
    assert all(p.dtype == numpy.float32 for p in model.params.values())


def test_d8_layers_follow_the_conventions():
    flow = d8().flow
    assert isinstance(flow[0], Logit) and flow[0].alpha == 0.05
    for layer, parity in zip(flow.layers[1:4], (0, 1, 0)):
        numpy.testing.assert_array_equal(layer.mask, checkerboard_mask(8, 8, parity))
    assert isinstance(flow[4], Squeeze)
    for layer, first in zip(flow.layers[5:8], (True, False, True)):  # copy 0:2, then 2:4, then 0:2
        numpy.testing.assert_array_equal(layer.mask, channel_mask(4, first))
    split = flow[8]
    assert isinstance(split, FactorOut) and split.keep == 2 and len(flow) == 9  # channels 2:4 factored out
    for layer, parity in zip(split.inner.layers, (0, 1, 0, 1)):
        assert isinstance(layer, ImageAffineCoupling)
        numpy.testing.assert_array_equal(layer.mask, checkerboard_mask(4, 4, parity))
    assert len(split.inner) == 4


def test_d8_convolutions_gather_the_whole_batch_before_the_last_scale():
    # the last scale runs at the step's memory peak and keeps Conv2d's lean default (1/K^2 of the batch)
    flow = d8().flow
    convs = [[m for m in layer.modules() if isinstance(m, Conv2d)] for layer in flow.layers]
    assert [len(c) for c in convs] == [0, 6, 6, 6, 0, 6, 6, 6, 24]  # 6 per conditioner, 4 conditioners inside
    assert all(c.gather_fraction == 1.0 for layer in convs[:-1] for c in layer)
    assert [s.stop - s.start for s in convs[1][1]._batch_slices(64, 64)] == [16] * 4  # 8x8: 1,024 pixels a slice
    assert [s.stop - s.start for s in convs[5][1]._batch_slices(64, 16)] == [64]  # 4x4: one slice
    assert all(c.gather_fraction is None for c in convs[-1])
    assert [s.stop - s.start for s in convs[-1][0]._batch_slices(64)] == [7] * 9 + [1]


def test_d8_maps_images_to_one_latent_of_the_same_size():
    model = d8()
    assert model.event_shape == (1, 8, 8) and model.base.event_shape == (4, 4, 4)
    assert model.sample(3, rng=numpy.random.default_rng(0)).shape == (3, 1, 8, 8)


def test_d8_reconstructs_test_images_in_float32():
    model = randomize_params(d8(), numpy.random.default_rng(0), scale=0.05)
    v, _ = dequantize(to_device(load_digits("test")[:100]), 17, numpy.random.default_rng(1))  # the model's backend
    z, logdet = model.flow.forward(v)
    assert z.dtype == numpy.float32 and z.shape == (100, 4, 4, 4)
    assert float(abs(logdet - Logit(0.05).forward(v)[1]).min()) > 1.0  # the couplings do change the density
    v_back, logdet_back = model.flow.inverse(z)
    assert float(abs(v_back - v).max()) < 1e-4
    assert float(abs(logdet + logdet_back).max()) < 1e-3  # log-dets of about 100 nats, in float32


def test_d8_tiny_variant_logdet_matches_jacobian(rng):
    # the whole 1x4x4 model, D8 widths, every parameter randomised: log-det vs slogdet of the 16x16 Jacobian
    model = randomize_params(d8(size=4, dtype=numpy.float64), numpy.random.default_rng(0), scale=0.05)
    v = to_device(rng.uniform(0.05, 0.95, size=(3, 1, 4, 4)))  # on the model's (default) backend
    logdet = to_numpy(model.flow.forward(v)[1])
    brute = to_numpy(brute_force_logdet(model.flow.forward, v))
    numpy.testing.assert_allclose(logdet, brute, atol=1e-6)
    logdet_logit = to_numpy(Logit(0.05).forward(v)[1])
    assert numpy.abs(logdet - logdet_logit).min() > 0.5


def test_d8_tiny_variant_gradcheck(rng):
    # the whole flow, forward: input and every parameter array (5 random entries each)
    model = randomize_params(d8(size=4, hidden=3, n_blocks=1, dtype=numpy.float64), numpy.random.default_rng(0), 0.3)
    report = check_gradients(
        model.flow, to_device(rng.uniform(0.05, 0.95, size=(2, 1, 4, 4))), directions=("forward",), max_entries=5
    )
    assert report.ok, report
    assert len(report.rows) == 1 + len(model.params) == 1 + 10 * 8  # 10 couplings of 4 convs


def test_d8_nll_gradient_matches_finite_differences(rng):
    model = randomize_params(d8(size=4, hidden=3, n_blocks=1, dtype=numpy.float64), numpy.random.default_rng(0), 0.3)
    v = to_device(rng.uniform(0.05, 0.95, size=(4, 1, 4, 4)))  # on the model's (default) backend
    model.zero_grads()
    model.nll_and_backward(v)
    name = "flow.8.inner.3.net.conv_in.W"
    param = model.params[name]
    analytic = to_numpy(model.grads[name].ravel()[:4])
    numeric = []
    for i in range(4):
        old = param.ravel()[i]
        param.ravel()[i] = old + 1e-5
        plus = float(model.nll(v))
        param.ravel()[i] = old - 1e-5
        minus = float(model.nll(v))
        param.ravel()[i] = old
        numeric.append((plus - minus) / 2e-5)
    numpy.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-10)


def test_evaluate_bpd_of_the_untrained_model_by_hand():
    # at initialisation every coupling is the identity: z is a permutation of y = logit(0.05 + 0.9 v), so
    # log q(v) = sum log N(y) + log|dy/dv| by hand; 10 fixed draws from a generator seeded 0
    images = load_digits("test")[:20]
    result = evaluate_bpd(d8(dtype=numpy.float64), images, n_draws=3, seed=5, batch_size=7)
    gen = numpy.random.default_rng(5)
    bpds = []
    for _ in range(3):
        v = (images + gen.uniform(0, 1, size=images.shape)) / 17
        p = 0.05 + 0.9 * v
        y = numpy.log(p / (1 - p))
        log_q = (-0.5 * y**2 - 0.5 * math.log(2 * math.pi) + math.log(0.9) - numpy.log(p * (1 - p))).sum(axis=(1, 2, 3))
        bpds.append(-(log_q - 64 * math.log(17)) / (64 * math.log(2)))
    assert result["bpd"] == pytest.approx(numpy.mean(bpds), rel=1e-9)
    assert result["iw_bpd"] < result["bpd"]


def test_evaluate_bpd_is_the_same_on_every_backend(xp):
    model = d8(size=8, hidden=4, n_blocks=1, dtype=numpy.float64)
    host = evaluate_bpd(model, load_digits("test")[:10], n_draws=2)
    moved = evaluate_bpd(model.to(xp), load_digits("test")[:10], n_draws=2)
    assert moved["bpd"] == pytest.approx(host["bpd"], rel=1e-9)


def test_d8_runs_on_the_backend(xp, rng):
    model = randomize_params(d8(size=4, hidden=4, n_blocks=1), numpy.random.default_rng(0), 0.1).to(xp)
    v = to_device(rng.uniform(0, 1, size=(5, 1, 4, 4)), xp, numpy.float32)
    model.zero_grads()
    loss = model.nll_and_backward(v)
    assert numpy.isfinite(float(loss))
    x = model.sample(4, rng=None)
    assert x.shape == (4, 1, 4, 4) and numpy.isfinite(to_numpy(x)).all()


def test_d8_rejects_bad_size():
    with pytest.raises(ValueError, match="even integer >= 4"):
        d8(size=6 + 1)
    with pytest.raises(ValueError, match="even integer >= 4"):
        d8(size=2)


def test_d8_flow_is_a_flow():
    assert isinstance(d8(size=4, hidden=2, n_blocks=0).flow, Flow)


def test_d8_tiny_variant_gradcheck_with_memory_by_inversion(rng):
    # every Flow (the outer one and the factor-out's inner one) rebuilds its inputs by inversion,
    # through the logit preprocessing, both checkerboard and channel couplings, squeeze and factor-out
    def build():
        model = d8(size=4, hidden=3, n_blocks=1, dtype=numpy.float64)
        return randomize_params(model, numpy.random.default_rng(0), 0.3)

    model = build().set_recompute("invert")
    assert model.flow.recompute == model.flow[-1].inner.recompute == "invert"
    v = to_device(rng.uniform(0.05, 0.95, size=(2, 1, 4, 4)))  # on the model's (default) backend
    report = check_gradients(model.flow, v, directions=("forward",), max_entries=5)
    assert report.ok, report
    # the same NLL gradients as the cached path, and no layer keeps a cache afterwards
    cached = build()
    cached.zero_grads()
    model.zero_grads()
    numpy.testing.assert_allclose(to_numpy(model.nll_and_backward(v)), to_numpy(cached.nll_and_backward(v)), rtol=1e-12)
    for name, grad in cached.grads.items():
        numpy.testing.assert_allclose(to_numpy(model.grads[name]), to_numpy(grad), rtol=1e-7, atol=1e-10, err_msg=name)

    def caches(module):
        return len(getattr(module, "_caches", {})) + sum(caches(child) for child in module._children.values())

    assert caches(model) == 0 and caches(cached) == 0
