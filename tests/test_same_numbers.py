"""Every zoo model gives the recorded numbers, and checkpoints written by earlier code load.

The references (tests/fixtures/same_numbers.npz, tests/fixtures/checkpoints/)
were written by ``tests/fixtures/same_numbers.py`` with commit 7b6b2da's
layers: log q(x), every gradient of the NLL and, for the 2D models, every
gradient of the reverse KL on U1, in float64 on fixed inputs and random
parameters. A refactor of the layers keeps them to 1e-12 relative.
"""

import os

import numpy
import pytest

from minflow.checkpoint import load_checkpoint
from minflow.data.energy import get_energy
from minflow.optim import Adam
from tests.fixtures.same_numbers import CHECKPOINTED, HERE, MODELS, nll_gradients, reverse_kl_gradients

RTOL = 1e-12


@pytest.fixture(scope="module")
def reference():
    with numpy.load(os.path.join(HERE, "same_numbers.npz"), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _group(reference, name, group):
    prefix = f"{name}/{group}/"
    return {k[len(prefix) :]: v for k, v in reference.items() if k.startswith(prefix)}


def _assert_close(actual, expected, what):
    """Norm-wise relative agreement |a - e| <= RTOL |e| (with a floor for all-zero arrays)."""
    err = numpy.linalg.norm(numpy.ravel(actual - expected))
    scale = max(numpy.linalg.norm(numpy.ravel(expected)), 1e-300)
    assert err <= RTOL * scale, f"{what}: relative difference {err / scale:.3e} > {RTOL:g}"


def _rebuilt(reference, name):
    """A fresh model of ``name`` holding the recorded parameters and buffers."""
    model = MODELS[name][0]()
    saved = _group(reference, name, "param")
    assert sorted(saved) == sorted(model.params), "parameter names changed; add a checkpoint converter"
    for k, p in model.params.items():
        p[...] = saved[k]
    for k, b in _group(reference, name, "buffer").items():
        model.set_buffer(k, b)
    return model


@pytest.mark.parametrize("name", list(MODELS))
def test_zoo_model_log_prob_and_nll_gradients_are_the_recorded_ones(reference, name):
    model = _rebuilt(reference, name)
    log_q, grads = nll_gradients(model, reference[f"{name}/x"])
    _assert_close(log_q, reference[f"{name}/log_prob"], f"{name} log_prob")
    expected = _group(reference, name, "nll_grad")
    assert sorted(grads) == sorted(expected)
    for k, g in grads.items():
        _assert_close(g, expected[k], f"{name} NLL gradient of {k}")


@pytest.mark.parametrize("name", [n for n in MODELS if MODELS[n][1] == (2,)])
def test_2d_zoo_model_reverse_kl_gradients_are_the_recorded_ones(reference, name):
    model = _rebuilt(reference, name)
    loss, grads = reverse_kl_gradients(model, reference[f"{name}/z0"], get_energy("U1"))
    _assert_close(loss, reference[f"{name}/kl_loss"], f"{name} reverse KL")
    expected = _group(reference, name, "kl_grad")
    assert sorted(grads) == sorted(expected)
    for k, g in grads.items():
        _assert_close(g, expected[k], f"{name} reverse-KL gradient of {k}")


@pytest.mark.parametrize("name", CHECKPOINTED)
def test_checkpoint_written_by_earlier_code_loads_with_the_same_log_prob(name):
    model = MODELS[name][0]()
    optimizer = Adam(model.params, model.grads, lr=1e-2)
    extra = load_checkpoint(os.path.join(HERE, "checkpoints", f"{name}.npz"), model, optimizer)
    assert optimizer.t == 3
    log_q, _ = nll_gradients(model, extra["x"])
    numpy.testing.assert_allclose(log_q, extra["log_prob"], rtol=1e-9, atol=0)
