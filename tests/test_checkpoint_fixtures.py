"""Version-1 checkpoints committed as fixtures keep loading.

tests/fixtures/checkpoints_v1/ holds a glow_2d and a glow_digits checkpoint
(written by tests/fixtures/make_fixtures.py) and a maf_2d one (by
tests/fixtures/maf_2d_checkpoint.py): float64, model and Adam state, with a batch x and its log_prob as extra arrays. Each must load into the
model built the same way and give the same log-densities.
"""

import os
import sys

import numpy
import pytest

from minflow.checkpoint import CheckpointError, load_checkpoint
from minflow.optim import Adam
from minflow.zoo import maf_2d

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
sys.path.insert(0, FIXTURES)
from make_fixtures import reference_models


@pytest.mark.parametrize("name", ["glow_2d", "glow_digits"])
def test_version_1_checkpoint_loads_with_the_same_log_prob(name):
    model, _ = reference_models()[name]
    optimizer = Adam(model.params, model.grads, lr=1e-2)
    extra = load_checkpoint(os.path.join(FIXTURES, "checkpoints_v1", f"{name}.npz"), model, optimizer)
    assert all(b.tolist() == [1.0] for k, b in model.buffers().items() if k.endswith("initialized"))
    numpy.testing.assert_allclose(model.log_prob(extra["x"]), extra["log_prob"], rtol=1e-9, atol=0)
    assert optimizer.state() and all(numpy.isfinite(v).all() for v in optimizer.state().values())


def test_maf_2d_checkpoint_of_the_tanh_mafs_loads_with_the_same_log_prob():
    """checkpoints_v1/maf_2d.npz (written by tests/fixtures/maf_2d_checkpoint.py) into maf_2d(scale="tanh"),
    built by its arguments; the default maf_2d (other depth and widths) refuses it with a clear error."""
    from maf_2d_checkpoint import legacy_maf_2d

    path = os.path.join(FIXTURES, "checkpoints_v1", "maf_2d.npz")
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_checkpoint(path, maf_2d(dtype=numpy.float64))
    model = legacy_maf_2d(scale="tanh", last_init="zeros")
    optimizer = Adam(model.params, model.grads, lr=1e-2)
    extra = load_checkpoint(path, model, optimizer)
    assert optimizer.t == 3
    numpy.testing.assert_allclose(model.log_prob(extra["x"]), extra["log_prob"], rtol=1e-12, atol=0)


def test_maf_2d_checkpoint_of_the_16_layer_maf_loads_by_its_arguments_and_not_into_the_default(tmp_path):
    """maf_2d(n_layers=16, hidden=(44, 44)) reloads its own checkpoint with the same log_prob; the default
    maf_2d (20 layers of (40, 40)) refuses it with a clear error."""
    from minflow.checkpoint import save_checkpoint

    old = maf_2d(n_layers=16, hidden=(44, 44), dtype=numpy.float64, seed=3)
    rng = numpy.random.default_rng(3)
    for p in old.params.values():
        p[...] += 0.1 * rng.standard_normal(p.shape)  # off the zero last layers: every weight matters
    x = rng.standard_normal((6, 2))
    path = str(tmp_path / "maf_2d_16.npz")
    save_checkpoint(path, old, None, {"x": x})
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_checkpoint(path, maf_2d(dtype=numpy.float64))
    model = maf_2d(n_layers=16, hidden=(44, 44), dtype=numpy.float64, seed=4)
    load_checkpoint(path, model)
    numpy.testing.assert_allclose(model.log_prob(x), old.log_prob(x), rtol=1e-12, atol=0)
