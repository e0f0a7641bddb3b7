"""Additive coupling for images with a channel mask (NICE; Dinh, Krueger & Bengio 2014, arXiv:1410.8516).

Direction: forward maps data x to latent z. A channel mask
(``flows.image_masks.channel_mask``) marks the copied channels x_a; a
convolutional ResNet reads them and gives a shift for the other channels:

    t = net(x_a)                        (N, Cb, H, W)
    forward:  z_a = x_a,  z_b = x_b + t
    inverse:  x_a = z_a,  x_b = z_b - t
    log|det dz/dx| = 0                  (unit triangular Jacobian: volume preserving)

Glow (Kingma & Dhariwal 2018, arXiv:1807.03039, section 3.3 and Figure 3)
compares this additive coupling with the affine one; between couplings, a
1x1 convolution or a permutation mixes the channels, so one fixed mask
(copy the first half) serves every layer. A ``Coupling`` with a channel
split, a ResNet conditioner and the ``Additive`` transformer.
"""

from ..backend import DEFAULT_DTYPE
from .coupling import IMAGE_HINT, Coupling, resnet_conditioner
from .image_masks import check_image_mask
from .transformers.additive import Additive

__all__ = ["ImageAdditiveCoupling"]


class ImageAdditiveCoupling(Coupling):
    """NICE additive coupling on (N, C, H, W) images, split by channels.

    Args:
        channels: C.
        mask: bool (C,) channel mask, True = copied (``channel_mask(C)``).
        hidden, n_blocks, kernel_size: the ResNet conditioner (Ca -> Cb
            channels; its last convolution starts at zero, so the coupling
            starts as the identity).
        dtype, rng: parameter dtype and random generator (required keyword).

    Shapes:
        x, z: (N, C, H, W); x_a: (N, Ca, H, W); x_b, t: (N, Cb, H, W);
        logdet: (N,) zeros.

    Caches:
        a marker of the pass (see ``Coupling``).

    Reference:
        Dinh, Krueger & Bengio (2014), "NICE", section 3.2; Kingma &
        Dhariwal (2018), "Glow", section 3.3.
    """

    def __init__(self, channels, mask, hidden=32, n_blocks=2, kernel_size=3, dtype=DEFAULT_DTYPE, *, rng):
        mask = check_image_mask(mask)
        if mask.ndim != 1 or mask.shape[0] != channels:
            raise ValueError(
                f"ImageAdditiveCoupling needs a channel mask of shape ({channels},); got shape {mask.shape}. "
                "Use channel_mask(C, first), or ImageAffineCoupling for a checkerboard mask."
            )
        split, net, _ = resnet_conditioner(channels, mask, 1, hidden, n_blocks, kernel_size, dtype, rng=rng)
        self.channels = int(channels)
        super().__init__(split, net, Additive(), (int(channels), None, None), IMAGE_HINT)
