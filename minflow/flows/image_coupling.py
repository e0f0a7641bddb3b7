"""Affine coupling for images (RealNVP; Dinh, Sohl-Dickstein & Bengio 2016, arXiv:1605.08803).

Direction: forward maps data x to latent z. A mask (``flows.image_masks``)
marks the copied entries x_a; a convolutional ResNet reads them and gives a
log-scale and a shift for the transformed entries x_b:

    s_raw, t = net(x_a)                 s = scale * tanh(s_raw)   (scale = 1 unless learnable)
    forward:  z_a = x_a,  z_b = x_b * exp(s) + t
    inverse:  x_a = z_a,  x_b = (z_b - t) * exp(-s)
    log|det dz/dx| = sum of s over the transformed entries   (triangular Jacobian)

Checkerboard (spatial, (H, W)) masks: the net sees the masked image
x * mask with all C channels and returns 2C channels; s and t are zeroed on
the copied pixels, so z = x * exp(s) + t leaves those unchanged.
Channel masks ((C,)): the net sees the copied channels (C/2) and returns
s and t for the others (C channels in all). These are the D8 conventions of
docs/reference-problems.md.
"""

from ..backend import DEFAULT_DTYPE, get_array_module, make_rng, to_device
from ..nn.resnet import ResNet
from .base import Bijection
from .image_masks import check_image_mask

__all__ = ["ImageAffineCoupling"]


class ImageAffineCoupling(Bijection):
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
        each direction keeps x_b (N, Cb, H, W) and tanh(s_raw) (N, Cb, H, W):
        its backward needs them (dz_b/ds = x_b exp(s), ds/ds_raw =
        scale (1 - tanh^2)), and recomputing them would cost a conditioner
        pass. exp(s) is recomputed from tanh(s_raw) instead of cached: one
        exp per transformed number buys a third less coupling memory, which
        counts at the activation peak of an image model. The conditioner
        keeps the caches of its last pass only, so running one direction
        drops the other direction's cache (its backward is then a clear error).

    Reference:
        Dinh et al. (2016), "Density estimation using Real NVP", sections 3.3-3.4.
    """

    stateless = True  # the conditioner is a plain network: its caches are the only state

    def __init__(
        self, channels, mask, hidden=32, n_blocks=2, kernel_size=3, learnable_scale=False, dtype=DEFAULT_DTYPE, rng=None
    ):
        super().__init__()
        mask = check_image_mask(mask)
        rng = rng if rng is not None else make_rng(0)
        self.channels = int(channels)
        self.spatial = mask.ndim == 2
        if not self.spatial and mask.shape[0] != self.channels:
            raise ValueError(
                f"A channel mask needs one entry per channel: C={self.channels}, mask has {mask.shape[0]}. "
                "Use channel_mask(C, first)."
            )
        self.mask = mask
        cond_in = self.channels if self.spatial else int(mask.sum())
        self.cb = self.channels if self.spatial else int((~mask).sum())  # transformed channels
        self.net = self.add_child(
            "net", ResNet(cond_in, 2 * self.cb, hidden, n_blocks, kernel_size, last_init="zeros", dtype=dtype, rng=rng)
        )
        xp = get_array_module(self.net.params["conv_in.W"])
        if self.spatial:
            self.copied = to_device(mask[None, None], xp)  # (1, 1, H, W) bool
            self.free = ~self.copied  # transformed pixels
        else:
            self.idx_a = to_device(mask.nonzero()[0], xp)  # copied channels, (Ca,)
            self.idx_b = to_device((~mask).nonzero()[0], xp)  # transformed ones, (Cb,)
        self.learnable_scale = learnable_scale
        if learnable_scale:
            self.add_param("scale", xp.ones((self.cb, 1, 1), dtype=dtype))

    def _move_fixed_arrays(self, xp):
        super()._move_fixed_arrays(xp)
        if self.spatial:
            self.copied, self.free = to_device(self.copied, xp), to_device(self.free, xp)
        else:
            self.idx_a, self.idx_b = to_device(self.idx_a, xp), to_device(self.idx_b, xp)

    def _check_input(self, x, name):
        shape = f"(N, {self.channels}, " + (f"{self.mask.shape[0]}, {self.mask.shape[1]})" if self.spatial else "H, W)")
        ok = x.ndim == 4 and x.shape[1] == self.channels
        if ok and self.spatial:
            ok = tuple(x.shape[2:]) == self.mask.shape
        if not ok:
            raise ValueError(
                f"ImageAffineCoupling expects {name} of shape {shape}; got {tuple(x.shape)}. "
                "Build the mask for the image size at this point of the flow (after any Squeeze)."
            )

    def _start_pass(self, name, other):
        """Running a pass overwrites the conditioner's cache: drop the other pass's cache."""
        if hasattr(self, "_caches"):
            self._caches.pop(other, None)

    def _split(self, x):
        """(x_a, x_b): the conditioner's input and the entries the affine map acts on."""
        if self.spatial:
            return x * self.copied, x  # (N, C, H, W) each; s = t = 0 on the copied pixels of x_b
        return x[:, self.idx_a], x[:, self.idx_b]  # (N, Ca, H, W), (N, Cb, H, W)

    def _merge(self, a, b):
        """The full image from the copied part a and the transformed part b."""
        if self.spatial:
            return b  # b already holds the copied pixels, unchanged
        xp = get_array_module(a)
        out = xp.empty((a.shape[0], self.channels, *a.shape[2:]), dtype=a.dtype)
        out[:, self.idx_a] = a
        out[:, self.idx_b] = b
        return out  # (N, C, H, W)

    def _log_scale_and_shift(self, x_a):
        xp = get_array_module(x_a)
        h = self.net.forward(x_a)  # (N, 2 Cb, H, W)
        s_raw, t = h[:, : self.cb], h[:, self.cb :]
        tanh_s = xp.tanh(s_raw)
        t = t * self.free if self.spatial else t  # copied pixels stay as they are
        return self._log_scale(tanh_s), t, tanh_s

    def _log_scale(self, tanh_s):
        """s = scale * tanh(s_raw), zero on the copied pixels of a spatial mask."""
        s = tanh_s * self._own_params["scale"] if self.learnable_scale else tanh_s
        return s * self.free if self.spatial else s

    def forward(self, x):
        self._check_input(x, "x")
        xp = get_array_module(x)
        self._start_pass("forward", "inverse")
        x_a, x_b = self._split(x)
        s, t, tanh_s = self._log_scale_and_shift(x_a)
        exp_s = xp.exp(s)
        z_b = x_b * exp_s + t
        self._save_cache("forward", (x_b, tanh_s))
        return self._merge(x_a, z_b), s.sum(axis=(1, 2, 3))

    def inverse(self, z):
        self._check_input(z, "z")
        xp = get_array_module(z)
        self._start_pass("inverse", "forward")
        z_a, z_b = self._split(z)
        s, t, tanh_s = self._log_scale_and_shift(z_a)
        exp_neg_s = xp.exp(-s)
        x_b = (z_b - t) * exp_neg_s
        self._save_cache("inverse", (x_b, tanh_s))
        return self._merge(z_a, x_b), -s.sum(axis=(1, 2, 3))

    def _through_conditioner(self, ds, dt, tanh_s):
        """Backpropagate dL/ds and dL/dt through the masking, s = scale * tanh(s_raw) and the net."""
        xp = get_array_module(ds)
        if self.spatial:
            # s = free * s_full, t = free * t_full
            ds, dt = ds * self.free, dt * self.free
        if self.learnable_scale:
            self._own_grads["scale"] += (ds * tanh_s).sum(axis=(0, 2, 3))[:, None, None]  # (Cb, 1, 1)
            ds = ds * self._own_params["scale"]
        ds_raw = ds * (1 - tanh_s * tanh_s)  # tanh' = 1 - tanh^2
        return self.net.backward(xp.concatenate([ds_raw, dt], axis=1))  # dL/d(conditioner input)

    def _input_grad(self, d_out, d_cond, d_b):
        """dL/d(input) from the copied path (d_out, unchanged), the conditioner (d_cond) and the affine part (d_b)."""
        if self.spatial:
            # input -> (input * copied -> net) and (input -> affine map, identity on copied pixels)
            return d_b + d_cond * self.copied
        return self._merge(d_out[:, self.idx_a] + d_cond, d_b)

    def backward(self, dz, dlogdet):
        x_b, tanh_s = self._take_cache("forward", "backward")
        exp_s = get_array_module(x_b).exp(self._log_scale(tanh_s))
        dz_b = dz if self.spatial else dz[:, self.idx_b]
        # z_b = x_b * exp(s) + t
        dx_b = dz_b * exp_s
        dt = dz_b
        # logdet = sum of s, so every s also receives dlogdet
        ds = dz_b * x_b * exp_s + dlogdet[:, None, None, None]
        # z_a = x_a, and x_a also feeds the conditioner
        return self._input_grad(dz, self._through_conditioner(ds, dt, tanh_s), dx_b)

    def inverse_backward(self, dx, dlogdet):
        x_b, tanh_s = self._take_cache("inverse", "inverse_backward")
        exp_neg_s = get_array_module(x_b).exp(-self._log_scale(tanh_s))
        dx_b = dx if self.spatial else dx[:, self.idx_b]
        # x_b = (z_b - t) * exp(-s)
        dz_b = dx_b * exp_neg_s
        dt = -dz_b
        # dx_b/ds = -x_b; logdet = -sum of s
        ds = -dx_b * x_b - dlogdet[:, None, None, None]
        # x_a = z_a, and z_a also feeds the conditioner
        return self._input_grad(dx, self._through_conditioner(ds, dt, tanh_s), dz_b)
