"""Determinism: the same seed gives bitwise-identical parameters after training on the CPU.

Short runs of the two reference models that train on data: R2 through
``fit_samples`` (the R2 recipe: fresh samples every step), and D8 through the
``digits`` command (shuffling, dequantisation noise, Adam with weight decay,
the checkpoint it writes). Equality is ``array_equal``, not closeness.
"""

import numpy
import pytest

from minflow.__main__ import main
from minflow.backend import to_numpy
from minflow.checkpoint import load_checkpoint
from minflow.data.toy2d import get_toy
from minflow.optim import Adam
from minflow.train import fit_samples
from minflow.zoo.d8 import d8
from minflow.zoo.r2 import realnvp_2d


def _assert_bitwise_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and numpy.array_equal(a[k], b[k]), f"{k} differs"


def _r2_run(init_seed, data_seed, steps=40):
    model = realnvp_2d(seed=init_seed)
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    toy = get_toy("moons")
    history = fit_samples(model, toy.sample, steps, batch_size=128, seed=data_seed, optimizer=optimizer, progress=False)
    state = {k: to_numpy(v).copy() for k, v in optimizer.state().items()}  # host copies, wherever the model lives
    return {k: to_numpy(p).copy() for k, p in model.params.items()}, state, history["loss"]


def test_r2_same_seed_gives_bitwise_identical_parameters():
    params_a, state_a, loss_a = _r2_run(0, 0)
    params_b, state_b, loss_b = _r2_run(0, 0)
    _assert_bitwise_equal(params_a, params_b)
    _assert_bitwise_equal(state_a, state_b)
    assert loss_a == loss_b
    # and the seeds matter: another data stream, or another initialisation, trains differently
    for other in (_r2_run(0, 1)[0], _r2_run(1, 0)[0]):
        assert any(not numpy.array_equal(params_a[k], other[k]) for k in params_a)


def _d8_run(tmp_path, name, seed):
    path = tmp_path / f"{name}.npz"
    argv = ["digits", "--epochs", "1", "--train-size", "32", "--batch-size", "16", "--eval-draws", "1"]
    argv += ["--seed", str(seed), "--no-figures", "--no-progress", "--checkpoint", str(path), "--out", str(tmp_path)]
    assert main(argv) == 0
    model = d8()
    load_checkpoint(path, model)
    return {k: to_numpy(p).copy() for k, p in model.params.items()}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_d8_same_seed_gives_bitwise_identical_parameters(tmp_path):
    first = _d8_run(tmp_path, "a", seed=0)
    second = _d8_run(tmp_path, "b", seed=0)
    _assert_bitwise_equal(first, second)
    assert sum(p.size for p in first.values()) == 384_962  # the D8 architecture itself
    untrained = {k: to_numpy(p).copy() for k, p in d8().params.items()}
    assert any(not numpy.array_equal(first[k], untrained[k]) for k in first)  # it did train
    other = _d8_run(tmp_path, "c", seed=1)
    assert any(not numpy.array_equal(first[k], other[k]) for k in first)
