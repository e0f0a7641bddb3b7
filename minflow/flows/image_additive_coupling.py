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
(copy the first half) serves every layer.
"""

from ..backend import DEFAULT_DTYPE, get_array_module, make_rng, to_device
from ..nn.resnet import ResNet
from .base import Bijection
from .image_masks import check_image_mask

__all__ = ["ImageAdditiveCoupling"]


class ImageAdditiveCoupling(Bijection):
    """NICE additive coupling on (N, C, H, W) images, split by channels.

    Args:
        channels: C.
        mask: bool (C,) channel mask, True = copied (``channel_mask(C)``).
        hidden, n_blocks, kernel_size: the ResNet conditioner (Ca -> Cb
            channels; its last convolution starts at zero, so the coupling
            starts as the identity).
        dtype, rng: parameter dtype and random generator (default seed 0).

    Shapes:
        x, z: (N, C, H, W); x_a: (N, Ca, H, W); x_b, t: (N, Cb, H, W);
        logdet: (N,) zeros.

    Caches:
        nothing but a marker of the pass (dz_b/dx_b = 1 needs no values);
        the conditioner keeps its own caches for the last pass only, so
        running one direction drops the other direction's marker and its
        backward is then a clear error, never a silently wrong gradient.

    Reference:
        Dinh, Krueger & Bengio (2014), "NICE", section 3.2; Kingma &
        Dhariwal (2018), "Glow", section 3.3.
    """

    stateless = True  # the conditioner is a plain network: its caches are the only state

    def __init__(self, channels, mask, hidden=32, n_blocks=2, kernel_size=3, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        mask = check_image_mask(mask)
        if mask.ndim != 1 or mask.shape[0] != channels:
            raise ValueError(
                f"ImageAdditiveCoupling needs a channel mask of shape ({channels},); got shape {mask.shape}. "
                "Use channel_mask(C, first), or ImageAffineCoupling for a checkerboard mask."
            )
        rng = rng if rng is not None else make_rng(0)
        self.channels = int(channels)
        self.mask = mask
        ca, self.cb = int(mask.sum()), int((~mask).sum())
        self.net = self.add_child(
            "net", ResNet(ca, self.cb, hidden, n_blocks, kernel_size, last_init="zeros", dtype=dtype, rng=rng)
        )
        xp = get_array_module(self.net.params["conv_in.W"])
        self.idx_a = to_device(mask.nonzero()[0], xp)  # copied channels, (Ca,)
        self.idx_b = to_device((~mask).nonzero()[0], xp)  # shifted channels, (Cb,)

    def _move_fixed_arrays(self, xp):
        super()._move_fixed_arrays(xp)
        self.idx_a, self.idx_b = to_device(self.idx_a, xp), to_device(self.idx_b, xp)

    def _check_input(self, x, name):
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"ImageAdditiveCoupling expects {name} of shape (N, {self.channels}, H, W); got {tuple(x.shape)}."
            )

    def _merge(self, a, b):
        xp = get_array_module(a)
        out = xp.empty((a.shape[0], self.channels, *a.shape[2:]), dtype=a.dtype)
        out[:, self.idx_a] = a
        out[:, self.idx_b] = b
        return out  # (N, C, H, W)

    def _start_pass(self, name, other):
        """A pass overwrites the conditioner's caches: drop the other pass's marker, set this one's."""
        if hasattr(self, "_caches"):
            self._caches.pop(other, None)
        self._save_cache(name, True)

    def _zero_logdet(self, x):
        return get_array_module(x).zeros(x.shape[0], dtype=x.dtype)

    def forward(self, x):
        self._check_input(x, "x")
        self._start_pass("forward", "inverse")
        x_a, x_b = x[:, self.idx_a], x[:, self.idx_b]  # (N, Ca, H, W), (N, Cb, H, W)
        z_b = x_b + self.net.forward(x_a)
        return self._merge(x_a, z_b), self._zero_logdet(x)

    def inverse(self, z):
        self._check_input(z, "z")
        self._start_pass("inverse", "forward")
        z_a, z_b = z[:, self.idx_a], z[:, self.idx_b]
        x_b = z_b - self.net.forward(z_a)
        return self._merge(z_a, x_b), self._zero_logdet(z)

    def backward(self, dz, dlogdet):
        self._take_cache("forward", "backward")
        dz_a, dz_b = dz[:, self.idx_a], dz[:, self.idx_b]
        # z_b = x_b + t(x_a): dx_b = dz_b, dt = dz_b; z_a = x_a also feeds the net
        return self._merge(dz_a + self.net.backward(dz_b), dz_b)

    def inverse_backward(self, dx, dlogdet):
        self._take_cache("inverse", "inverse_backward")
        dx_a, dx_b = dx[:, self.idx_a], dx[:, self.idx_b]
        # x_b = z_b - t(z_a): dz_b = dx_b, dt = -dx_b; x_a = z_a also feeds the net
        return self._merge(dx_a + self.net.backward(-dx_b), dx_b)
