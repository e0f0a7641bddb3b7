"""Tests for minflow/nn/resnet.py: the convolutional conditioner of image couplings."""

import numpy
import pytest
from helpers import assert_block_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.nn.resnet import ResidualBlock, ResNet


def make_resnet(c, o, hidden, n_blocks):
    def make(dtype):
        net = ResNet(c, o, hidden=hidden, n_blocks=n_blocks, dtype=dtype, rng=make_rng(0))
        return randomize_params(net, numpy.random.default_rng(1), scale=0.3)

    return make


@pytest.mark.parametrize("n_blocks", [0, 2])
def test_resnet_gradcheck(n_blocks, xp, rng):
    # every conv's W and b and the input, by central differences in float64
    assert_block_passes_all_checks(make_resnet(2, 4, 5, n_blocks), rng.standard_normal((2, 2, 4, 3)), xp)


def test_residual_block_gradcheck(xp, rng):
    def make(dtype):
        return randomize_params(ResidualBlock(3, dtype=dtype, rng=make_rng(0)), numpy.random.default_rng(1), 0.3)

    assert_block_passes_all_checks(make, rng.standard_normal((2, 3, 4, 4)), xp)


def test_residual_block_formula(rng):
    block = randomize_params(ResidualBlock(3, dtype=numpy.float64, rng=make_rng(0)), rng)
    h = to_device(rng.standard_normal((2, 3, 4, 4)))  # on the block's (default) backend
    inner = block.conv_b.forward(numpy.maximum(block.conv_a.forward(h), 0))  # a ufunc: runs where h lives
    numpy.testing.assert_allclose(to_numpy(block.forward(h)), to_numpy(h + inner), rtol=1e-12)


def test_resnet_last_conv_starts_at_zero(rng):
    net = ResNet(1, 2, hidden=8, n_blocks=2, dtype=numpy.float64, rng=make_rng(0))
    assert not net.params["conv_out.W"].any() and not net.params["conv_out.b"].any()
    assert net.params["block1.conv_b.W"].any()
    out = net.forward(to_device(rng.standard_normal((3, 1, 4, 4))))
    numpy.testing.assert_array_equal(to_numpy(out), numpy.zeros((3, 2, 4, 4)))


def test_resnet_parameter_count():
    # conv in 1 -> 32, 2 blocks of two 32 -> 32 convs, conv out 32 -> 2: the D8 checkerboard conditioner
    net = ResNet(1, 2, hidden=32, n_blocks=2, rng=make_rng(0))
    assert net.num_params() == (9 * 32 + 32) + 4 * (9 * 32 * 32 + 32) + (9 * 32 * 2 + 2) == 37_890
    assert sorted(net.params) == sorted(
        f"{layer}.{p}"
        for layer in ["conv_in", "block0.conv_a", "block0.conv_b", "block1.conv_a", "block1.conv_b", "conv_out"]
        for p in "Wb"
    )


def test_resnet_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_blocks"):
        ResNet(1, 2, n_blocks=-1, rng=make_rng(0))
    with pytest.raises(ValueError, match="hidden"):
        ResNet(1, 2, hidden=0, rng=make_rng(0))
