"""Tests for minflow/zoo/tarflow.py: TarFlow on the 8x8 digits, and tiny variants checked by brute force."""

import numpy
import pytest
from helpers import randomize_params

from minflow.data.digits import load_digits
from minflow.flows import Logit, Patchify, Reverse, TarFlowBlock
from minflow.flows.preprocessing import dequantize
from minflow.gradcheck import brute_force_logdet, check_gradients
from minflow.optim import Adam
from minflow.zoo import TARFLOW_PARAMETERS, tarflow_digits
from minflow.zoo.d8 import D8_PARAMETERS


def tiny(patch=2, dtype=numpy.float64):
    """A 1x4x4 TarFlow, two blocks of one narrow layer, every parameter randomised."""
    model = tarflow_digits(patch=patch, blocks=2, hidden=4, depth=1, n_heads=2, mlp_ratio=2, size=4, dtype=dtype)
    return randomize_params(model, numpy.random.default_rng(0), scale=0.3)


def test_tarflow_digits_layers_follow_the_docstring():
    model = tarflow_digits()
    layers = model.flow.layers
    assert isinstance(layers[0], Logit) and layers[0].alpha == 0.05
    assert isinstance(layers[1], Patchify) and (layers[1].n_tokens, layers[1].token_features) == (16, 4)
    kinds = [type(layer) for layer in layers[2:]]
    assert kinds == [TarFlowBlock, Reverse] * 5 + [TarFlowBlock]
    assert model.event_shape == (1, 8, 8) and model.base.event_shape == (16, 4)
    assert model.num_params() == TARFLOW_PARAMETERS <= D8_PARAMETERS
    pixels = tarflow_digits(patch=1)
    assert pixels.base.event_shape == (64, 1) and pixels.num_params() <= D8_PARAMETERS


@pytest.mark.parametrize("patch", [1, 2])
def test_tarflow_digits_round_trip_float64(patch, rng):
    model = randomize_params(tarflow_digits(patch=patch, dtype=numpy.float64), numpy.random.default_rng(0), 0.05)
    v, _ = dequantize(load_digits("test")[:16], 17, rng, numpy.float64)
    z, logdet = model.flow.forward(v)
    v_back, logdet_back = model.flow.inverse(z)
    assert numpy.abs(v_back - v).max() < 1e-10
    assert numpy.abs(logdet + logdet_back).max() < 1e-10
    assert numpy.abs(z - model.flow[1].forward(model.flow[0].forward(v)[0])[0]).max() > 1e-2  # the blocks act


@pytest.mark.parametrize("patch", [1, 2])
def test_tarflow_digits_tiny_gradcheck_both_directions(patch, rng):
    # the whole flow: input and every parameter array (6 random entries each), forward and inverse
    model = tiny(patch)
    report = check_gradients(model.flow, rng.uniform(0.05, 0.95, size=(2, 1, 4, 4)), max_entries=6)
    assert report.ok, report
    assert len(report.rows) == 2 * (1 + len(model.params))


def test_tarflow_digits_tiny_logdet_matches_jacobian(rng):
    model = tiny()
    v = rng.uniform(0.05, 0.95, size=(3, 1, 4, 4))
    _, logdet = model.flow.forward(v)
    numpy.testing.assert_allclose(logdet, brute_force_logdet(model.flow.forward, v), atol=1e-6)


def test_tarflow_digits_memory_by_inversion_gives_the_same_gradients(rng):
    v = rng.uniform(0.05, 0.95, size=(4, 1, 4, 4))
    grads = {}
    for recompute in (None, "invert"):
        model = tiny().set_recompute(recompute)
        model.zero_grads()
        model.nll_and_backward(v)
        grads[recompute] = {name: g.copy() for name, g in model.grads.items()}
    for name, g in grads[None].items():
        numpy.testing.assert_allclose(grads["invert"][name], g, rtol=1e-8, atol=1e-12, err_msg=name)


def test_tarflow_digits_trains(rng):
    model = tarflow_digits(blocks=2, hidden=16, n_heads=2)
    v, _ = dequantize(load_digits("train")[:64], 17, rng, numpy.float32)
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    first = float(model.nll(v))
    for _ in range(10):
        model.zero_grads()
        model.nll_and_backward(v)
        optimizer.step()
    assert float(model.nll(v)) < first - 1.0


def test_tarflow_digits_rejects_bad_options():
    with pytest.raises(ValueError, match="patch must divide size"):
        tarflow_digits(patch=3)
    with pytest.raises(ValueError, match="blocks must be a positive integer"):
        tarflow_digits(blocks=0)


def test_tarflow_digits_checkpoint_restores_the_same_log_density(tmp_path, rng):
    from minflow.checkpoint import load_checkpoint, save_checkpoint

    trained = randomize_params(tarflow_digits(blocks=2, hidden=8, n_heads=2), numpy.random.default_rng(0), 0.1)
    save_checkpoint(tmp_path / "tarflow.npz", trained)
    fresh = tarflow_digits(blocks=2, hidden=8, n_heads=2)
    load_checkpoint(tmp_path / "tarflow.npz", fresh)
    v, _ = dequantize(load_digits("test")[:8], 17, rng, numpy.float32)
    numpy.testing.assert_array_equal(fresh.log_prob(v), trained.log_prob(v))
