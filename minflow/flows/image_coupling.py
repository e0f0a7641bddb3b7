"""Affine coupling for images (RealNVP; Dinh, Sohl-Dickstein & Bengio 2016, arXiv:1605.08803).

Direction: forward maps data x to latent z. A mask (``flows.image_masks``)
marks the copied entries x_a; a convolutional ResNet reads them and gives a
log-scale and a shift for the transformed entries x_b:

    s_raw, t = net(x_a)                 s = scale * tanh(s_raw)   (scale = 1 unless learnable)
    forward:  z_a = x_a,  z_b = x_b * exp(s) + t
    inverse:  x_a = z_a,  x_b = (z_b - t) * exp(-s)
    log|det dz/dx| = sum of s over the transformed entries   (triangular Jacobian)

Checkerboard (spatial, (H, W)) masks: the net sees the masked image
x * mask with all C channels and returns 2C channels; the copied pixels of
the output are put back unchanged (``CheckerboardSplit``). Channel masks
((C,)): the net sees the copied channels (C/2) and returns s and t for the
others (C channels in all). These are the D8 conventions of
docs/reference-problems.md. The layer is ``AffineCoupling``'s skeleton with a
ResNet conditioner (``flows.coupling``, ``flows.affine_coupling``).
"""

from ..backend import DEFAULT_DTYPE
from .affine_coupling import ScaleHookCoupling
from .coupling import IMAGE_HINT, image_event_shape, resnet_conditioner

__all__ = ["ImageAffineCoupling"]


class ImageAffineCoupling(ScaleHookCoupling):
    """RealNVP affine coupling on (N, C, H, W) images with a checkerboard or a channel mask.

    Args:
        channels: C.
        mask: bool (H, W) spatial mask (``checkerboard_mask``) or bool (C,)
            channel mask (``channel_mask``); True = copied.
        hidden: width of the ResNet conditioner (32 in D8).
        n_blocks: its residual blocks (2 in D8).
        kernel_size: odd kernel size of its convolutions (3 in D8).
        learnable_scale: if True, s = scale * tanh(s_raw) with a learnable
            per-channel ``scale`` (Cb, 1, 1), initialised to 1; else scale = 1.
        dtype, rng: parameter dtype and random generator. The conditioner's
            last convolution starts at zero, so the coupling starts as the identity.

    Shapes:
        x, z: (N, C, H, W) (spatial masks fix H, W to the mask's shape);
        conditioner: spatial (N, C, H, W) -> (N, 2C, H, W),
        channel (N, Ca, H, W) -> (N, 2Cb, H, W); logdet: (N,).

    Caches:
        see ``ScaleHookCoupling``: tanh(s_raw) (N, Cb, H, W) per pass, and the
        transformer's x_b and s; exp(s) is recomputed in the backward.

    Reference:
        Dinh et al. (2016), "Density estimation using Real NVP", sections 3.3-3.4.
    """

    def __init__(
        self, channels, mask, hidden=32, n_blocks=2, kernel_size=3, learnable_scale=False, dtype=DEFAULT_DTYPE, *, rng
    ):
        split, net, self.cb = resnet_conditioner(channels, mask, 2, hidden, n_blocks, kernel_size, dtype, rng=rng)
        self.channels = int(channels)
        scale_shape = (self.cb, 1, 1) if learnable_scale else None
        super().__init__(split, net, self.cb, scale_shape, dtype, image_event_shape(channels, split.mask), IMAGE_HINT)
