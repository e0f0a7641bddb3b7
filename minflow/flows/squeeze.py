"""Squeeze: space to depth, trading a 2x2 block of pixels for 4 channels (RealNVP's multi-scale step).

Dinh, Sohl-Dickstein & Bengio (2016), arXiv:1605.08803, section 3.6. Direction:
forward maps data x to latent z (image to squeezed image):

    forward:  z[n, 4c + 2 di + dj, i, j] = x[n, c, 2i + di, 2j + dj]     (N, C, H, W) -> (N, 4C, H/2, W/2)
    inverse:  the same index map read the other way (depth to space)
    log|det dz/dx| = 0   (a permutation of the entries)

Pixel (di, dj) of each 2x2 block goes to channel 2 di + dj of its input
channel's group of four (the D8 convention of docs/reference-problems.md). The
gradient of a permutation is the inverse permutation, so backward is unsqueeze.
"""

from ..backend import get_array_module
from .base import Bijection

__all__ = ["Squeeze", "squeeze", "unsqueeze"]


def squeeze(x):
    """(N, C, H, W) -> (N, 4C, H/2, W/2), z[n, 4c + 2 di + dj, i, j] = x[n, c, 2i + di, 2j + dj]."""
    n, c, height, width = x.shape
    blocks = x.reshape(n, c, height // 2, 2, width // 2, 2)  # (N, C, i, di, j, dj)
    return blocks.transpose(0, 1, 3, 5, 2, 4).reshape(n, 4 * c, height // 2, width // 2)  # (N, 4C, H/2, W/2)


def unsqueeze(z):
    """(N, 4C, H, W) -> (N, C, 2H, 2W), the inverse of ``squeeze``."""
    n, c4, height, width = z.shape
    blocks = z.reshape(n, c4 // 4, 2, 2, height, width)  # (N, C, di, dj, i, j)
    return blocks.transpose(0, 1, 4, 2, 5, 3).reshape(n, c4 // 4, 2 * height, 2 * width)  # (N, C, 2H, 2W)


class Squeeze(Bijection):
    """Space to depth by 2x2 blocks; ``Inverse(Squeeze())`` is depth to space.

    Shapes:
        x: (N, C, H, W) with H, W even -> z: (N, 4C, H/2, W/2); logdet: (N,) zeros.

    Caches:
        none: the map is a fixed permutation, so its backward needs nothing.

    Reference:
        Dinh et al. (2016), "Density estimation using Real NVP", section 3.6.
    """

    stateless = True

    def forward(self, x):
        if x.ndim != 4 or x.shape[2] % 2 or x.shape[3] % 2:
            raise ValueError(
                f"Squeeze expects x of shape (N, C, H, W) with even H and W; got {tuple(x.shape)}. "
                "Pad or crop the images to an even size first."
            )
        return squeeze(x), _zeros_like_batch(x)

    def inverse(self, z):
        if z.ndim != 4 or z.shape[1] % 4:
            raise ValueError(
                f"Squeeze.inverse expects z of shape (N, 4C, H, W), channels a multiple of 4; got {tuple(z.shape)}."
            )
        return unsqueeze(z), _zeros_like_batch(z)

    def backward(self, dz, dlogdet):
        # z = squeeze(x), a permutation: dx = its inverse applied to dz; the log-det is 0
        return unsqueeze(dz)

    def inverse_backward(self, dx, dlogdet):
        # x = unsqueeze(z): dz = squeeze(dx)
        return squeeze(dx)


def _zeros_like_batch(x):
    """A zero log-det of shape (N,) in x's module and dtype."""
    return get_array_module(x).zeros(x.shape[0], dtype=x.dtype)
