"""ResNet: the convolutional conditioner of image couplings (RealNVP's s and t networks).

Residual blocks (He, Zhang, Ren & Sun 2015, arXiv:1512.03385) as used by
RealNVP (Dinh, Sohl-Dickstein & Bengio 2016, arXiv:1605.08803), in the plain
form of the D8 reference model (no normalisation layers):

    h = conv_in(x)                          C -> K channels
    h = h + conv_b(relu(conv_a(h)))         each residual block, K -> K
    y = conv_out(relu(h))                   K -> O channels, zero-initialised

Backward runs the same steps in reverse; the skip connection adds the
gradient of the identity path to that of the block: dh = dh_out + d(block).
"""

from ..backend import DEFAULT_DTYPE
from .activations import ReLU
from .conv2d import Conv2d
from .module import Module

__all__ = ["ResNet", "ResidualBlock"]


class ResidualBlock(Module):
    """h -> h + conv_b(relu(conv_a(h))), channels kept.

    Args:
        channels: K, in and out.
        kernel_size: odd kernel size of both convolutions.
        dtype, rng: as for ``Conv2d``.

    Shapes:
        h: (N, K, H, W) -> same.

    Caches:
        none of its own; each convolution keeps its input, the ReLU its output (the same array as conv_b's input).
    """

    def __init__(self, channels, kernel_size=3, dtype=DEFAULT_DTYPE, *, rng):
        super().__init__()
        self.conv_a = self.add_child("conv_a", Conv2d(channels, channels, kernel_size, dtype=dtype, rng=rng))
        self.relu = self.add_child("relu", ReLU())
        self.conv_b = self.add_child("conv_b", Conv2d(channels, channels, kernel_size, dtype=dtype, rng=rng))

    def forward(self, h):
        y = self.conv_b.forward(self.relu.forward(self.conv_a.forward(h)))  # (N, K, H, W), a fresh array
        y += h  # the skip, added in place (no third array)
        return y

    def backward(self, dy):
        # y = h + conv_b(relu(conv_a(h)))
        dh = self.conv_a.backward(self.relu.backward(self.conv_b.backward(dy)))  # a fresh array
        dh += dy  # the skip passes dy on unchanged
        return dh


class ResNet(Module):
    """Convolutional conditioner: conv in, residual blocks, ReLU, zero-initialised conv out.

    Args:
        in_channels: C.
        out_channels: O (2 * the transformed channels for an affine coupling).
        hidden: K, the width of the residual stream (32 in D8).
        n_blocks: number of residual blocks (2 in D8).
        kernel_size: odd kernel size of every convolution (3 in D8).
        last_init: init of the output convolution; "zeros" (default) makes a
            coupling start as the identity.
        dtype, rng: as for ``Conv2d``; hidden convolutions start uniform.

    Shapes:
        x: (N, C, H, W) -> y: (N, O, H, W).

    Caches:
        none of its own; each convolution keeps its input, each ReLU its output (shared with the next convolution).

    Reference:
        Dinh et al. (2016), "Density estimation using Real NVP", section 4.1.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        hidden=32,
        n_blocks=2,
        kernel_size=3,
        last_init="zeros",
        dtype=DEFAULT_DTYPE,
        *,
        rng,
    ):
        super().__init__()
        if int(n_blocks) != n_blocks or n_blocks < 0:
            raise ValueError(f"ResNet n_blocks must be a non-negative integer; got {n_blocks!r}.")
        if int(hidden) != hidden or hidden < 1:
            raise ValueError(f"ResNet hidden must be a positive integer; got {hidden!r}.")
        self.conv_in = self.add_child("conv_in", Conv2d(in_channels, hidden, kernel_size, dtype=dtype, rng=rng))
        self.blocks = [
            self.add_child(f"block{i}", ResidualBlock(hidden, kernel_size, dtype=dtype, rng=rng))
            for i in range(int(n_blocks))
        ]
        self.relu = self.add_child("relu", ReLU())
        self.conv_out = self.add_child(
            "conv_out", Conv2d(hidden, out_channels, kernel_size, init=last_init, dtype=dtype, rng=rng)
        )

    def forward(self, x):
        h = self.conv_in.forward(x)  # (N, K, H, W)
        for block in self.blocks:
            h = block.forward(h)
        return self.conv_out.forward(self.relu.forward(h))  # (N, O, H, W)

    def backward(self, dy):
        # y = conv_out(relu(h))
        dh = self.relu.backward(self.conv_out.backward(dy))
        # h = block(h), last block first
        for block in reversed(self.blocks):
            dh = block.backward(dh)
        # h = conv_in(x)
        return self.conv_in.backward(dh)
