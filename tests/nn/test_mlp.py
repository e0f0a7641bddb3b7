"""Tests for minflow/nn/mlp.py: the conditioner network and its backward."""

import numpy
import pytest
from helpers import assert_block_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.nn import MLP
from minflow.nn.mlp import ACTIVATIONS


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_mlp_gradcheck(activation, xp, rng):
    def make(dtype):
        net = MLP((3, 8, 8, 4), activation=activation, dtype=dtype, rng=make_rng(0))
        return randomize_params(net, numpy.random.default_rng(0))

    assert_block_passes_all_checks(make, rng.standard_normal((6, 3)), xp)


def test_mlp_starts_at_zero_output_with_zero_last_layer(rng):
    net = MLP((2, 16, 3), dtype=numpy.float64, rng=make_rng(0))
    assert net.params["linear0.W"].any()
    numpy.testing.assert_array_equal(to_numpy(net.forward(to_device(rng.standard_normal((5, 2))))), numpy.zeros((5, 3)))


def test_mlp_equals_its_layers_written_out(rng):
    net = randomize_params(MLP((2, 5, 3), activation="tanh", dtype=numpy.float64, rng=make_rng(0)), rng)
    p = {name: to_numpy(value) for name, value in net.params.items()}
    x = rng.standard_normal((4, 2))
    expected = numpy.tanh(x @ p["linear0.W"] + p["linear0.b"]) @ p["linear1.W"] + p["linear1.b"]
    numpy.testing.assert_allclose(to_numpy(net.forward(to_device(x))), expected, rtol=1e-12)


def test_mlp_params_and_grads_are_shared_dicts():
    net = MLP((2, 4, 4, 1), last_init="uniform", rng=make_rng(0))
    assert list(net.params) == ["linear0.W", "linear0.b", "linear1.W", "linear1.b", "linear2.W", "linear2.b"]
    assert net.params.keys() == net.grads.keys()
    assert all(net.params[k].shape == net.grads[k].shape for k in net.params)
    assert net.num_params() == (2 * 4 + 4) + (4 * 4 + 4) + (4 + 1)
    net.params["linear0.W"][...] = 0  # the dict shares the layer's arrays
    assert not net.layers[0].params["W"].any()


def test_mlp_rejects_bad_sizes_and_activation():
    with pytest.raises(ValueError, match="at least two positive widths"):
        MLP((3,), rng=make_rng(0))
    with pytest.raises(ValueError, match="at least two positive widths"):
        MLP((3, 0, 2), rng=make_rng(0))
    with pytest.raises(ValueError, match="activation must be one of"):
        MLP((3, 2), activation="gelu", rng=make_rng(0))
