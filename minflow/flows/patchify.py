"""Patchify as a flow layer: images (N, C, H, W) to token sequences (N, T, C p p), log-det 0.

Direction: forward maps data x (images) to z (tokens), reading p x p patches
row by row (``nn.patchify``); inverse puts them back. Only entries move, so

    log|det| = 0,   backward = unpatchify,   inverse_backward = patchify.
"""

from ..backend import get_array_module
from ..nn.patchify import patchify, unpatchify
from .base import Bijection

__all__ = ["Patchify"]


class Patchify(Bijection):
    """Images to tokens of p x p patches (ViT's reading order), no parameters.

    Args:
        patch: p, the patch side.
        image_shape: (C, H, W) of one image, H and W multiples of p.

    Shapes:
        x: (N, C, H, W) -> z: (N, (H/p)(W/p), C p p); logdet: (N,) zeros.

    Caches:
        nothing: both backward passes are the other map.
    """

    stateless = True

    def __init__(self, patch, image_shape):
        super().__init__()
        c, height, width = (int(s) for s in image_shape)
        if height % patch or width % patch:
            raise ValueError(
                f"Patchify({patch}) needs H and W multiples of {patch}; got image shape {(c, height, width)}."
            )
        self.patch, self.image_shape = int(patch), (c, height, width)
        self.n_tokens, self.token_features = (height // patch) * (width // patch), c * patch * patch

    def forward(self, x):
        return patchify(x, self.patch), get_array_module(x).zeros(x.shape[0], dtype=x.dtype)

    def inverse(self, z):
        return unpatchify(z, self.patch, self.image_shape), get_array_module(z).zeros(z.shape[0], dtype=z.dtype)

    def backward(self, dz, dlogdet):
        return unpatchify(dz, self.patch, self.image_shape)

    def inverse_backward(self, dx, dlogdet):
        return patchify(dx, self.patch)
