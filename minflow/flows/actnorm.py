"""Activation normalization, ActNorm (Glow; Kingma & Dhariwal 2018, arXiv:1807.03039, section 3.1).

Direction: forward maps data x to latent z.

A per-channel affine map whose parameters are set from the first batch of
data, so that the output of the layer has zero mean and unit variance per
channel on that batch; after that they are ordinary trained parameters.
Channels are axis 1: features of vectors (N, D), channels of images
(N, C, H, W), where the same scale and bias apply at every pixel.

    forward:  z = x * exp(log_scale) + bias         (per channel)
    inverse:  x = (z - bias) * exp(-log_scale)
    log|det dz/dx| = H * W * sum_c log_scale_c      (H * W = 1 for vectors)

Data-dependent initialisation, on the first forward pass, of parameters
that still hold their construction values (the identity):
    log_scale = -0.5 * log(var(x) + eps),  bias = -mean(x) * exp(log_scale)
"""

import math

from ..backend import DEFAULT_DTYPE, get_array_module, get_backend, to_numpy, zeros
from .base import Bijection, _check_direction
from .shapes import channel_axes, check_channels, per_channel

__all__ = ["ActNorm"]


class ActNorm(Bijection):
    """Glow's per-channel scale and bias with data-dependent initialisation.

    The scale is parameterised by its logarithm, ``log_scale``: the scale
    exp(log_scale) stays positive whatever the optimizer does, so the layer
    is always invertible, and the log-det is linear in the parameter.

    Args:
        features: the size of axis 1, D features of vectors or C channels of images.
        data_init: if True (default), the first forward pass sets
            ``log_scale`` and ``bias`` from its batch (see the module
            docstring); if False the layer starts as the identity.
        eps: added to the per-channel variance at initialisation, so a
            constant channel gets a large but finite scale.
        dtype: parameter dtype (float32 to train, float64 to check).

    Shapes:
        x, z: (N, C) or (N, C, H, W) (any (N, C, ...)); logdet: (N,).
        log_scale, bias: (C,).

    Buffers:
        ``initialized``: (1,) array, 1.0 once the first forward pass has run
        (or with ``data_init=False``). It is saved with the model, so a
        reloaded checkpoint is never re-initialised by its first batch.

    Caches:
        forward keeps x, inverse keeps its output x: both backwards need x for
        d/dlog_scale (dz/dlog_scale = x * exp(log_scale)).

    Note:
        Only a forward pass initialises, and only parameters that still hold
        their construction values: an inverse pass before it (sampling from a
        fresh model) uses those, the identity, and leaves the layer
        uninitialised; a model trained by reverse KL (inverse passes and
        optimizer steps only) keeps its trained parameters at its first
        forward pass. The choice is made on the device (``where``), without
        reading a value back. Neither backward changes a parameter or the
        buffer.

        Memory by inversion (``Flow(recompute="invert")``) rebuilds the input
        by the affine map alone (``rebuild_input``), never initialising.

    Reference:
        Kingma & Dhariwal (2018), "Glow: Generative Flow with Invertible 1x1
        Convolutions", section 3.1 and Table 1.
    """

    def __init__(self, features, data_init=True, eps=1e-8, dtype=DEFAULT_DTYPE):
        super().__init__()
        if int(features) != features or features < 1:
            raise ValueError(f"ActNorm features must be a positive integer; got {features!r}.")
        self.features = int(features)
        self.eps = eps
        self._initialized = not data_init
        xp = get_backend()
        self.add_param("log_scale", zeros((self.features,), dtype, xp))
        self.add_param("bias", zeros((self.features,), dtype, xp))

    # -- the initialisation state, saved with the model ------------------------

    @property
    def initialized(self):
        """True once the parameters are set and the first batch will not reset them."""
        return self._initialized

    def _own_buffers(self):
        log_scale = self._own_params["log_scale"]
        xp = get_array_module(log_scale)
        return {"initialized": xp.full((1,), float(self._initialized), dtype=log_scale.dtype)}

    def _set_own_buffer(self, name, value):
        if name != "initialized":
            super()._set_own_buffer(name, value)  # raises: no such buffer
        else:
            # read once when a checkpoint is loaded or the layer moves, never in a pass
            self._initialized = bool(to_numpy(value).reshape(-1)[0] > 0.5)

    # -- helpers ----------------------------------------------------------------

    def _check_input(self, x, name):
        fix = "Build ActNorm(features) with the number of channels of axis 1."
        check_channels(x, name, self.features, "ActNorm", fix)

    def _logdet(self, x, sign):
        """sign * H * W * sum_c log_scale_c for every sample, shape (N,)."""
        xp = get_array_module(x)
        spatial = math.prod(x.shape[2:])  # H * W (1 for vectors)
        total = sign * spatial * self._own_params["log_scale"].sum()
        return xp.ones(x.shape[0], dtype=x.dtype) * total.astype(x.dtype)  # (N,)

    def _initialize(self, x):
        """Set log_scale, bias so that z has mean 0 and variance 1 per channel on x, if they are still the identity."""
        xp = get_array_module(x)
        axes = channel_axes(x)
        x64 = x.astype(xp.float64)
        mean = x64.mean(axis=axes)  # (C,)
        var = x64.var(axis=axes)  # (C,)
        log_scale_init = -0.5 * xp.log(var + self.eps)  # (C,)
        bias_init = -mean * xp.exp(log_scale_init)  # (C,)
        log_scale, bias = self._own_params["log_scale"], self._own_params["bias"]
        untouched = ~(log_scale != 0).any() & ~(bias != 0).any()  # 0-d, on the device: still the identity?
        log_scale[...] = xp.where(untouched, log_scale_init.astype(log_scale.dtype), log_scale)
        bias[...] = xp.where(untouched, bias_init.astype(bias.dtype), bias)
        self._initialized = True

    def _affine(self, x):
        """z = x * exp(log_scale) + bias, per channel."""
        xp = get_array_module(x)
        scale = xp.exp(per_channel(self._own_params["log_scale"], x))  # (1, C, 1, 1)
        return x * scale + per_channel(self._own_params["bias"], x)  # (N, C, H, W)

    def _affine_inverse(self, z):
        """x = (z - bias) * exp(-log_scale), per channel."""
        xp = get_array_module(z)
        inv_scale = xp.exp(-per_channel(self._own_params["log_scale"], z))  # (1, C, 1, 1)
        return (z - per_channel(self._own_params["bias"], z)) * inv_scale  # (N, C, H, W)

    # -- the four passes ----------------------------------------------------------

    def forward(self, x):
        self._check_input(x, "x")
        if not self._initialized:
            self._initialize(x)
        z = self._affine(x)  # (N, C, H, W)
        self._save_cache("forward", x)
        return z, self._logdet(x, 1.0)

    def inverse(self, z):
        self._check_input(z, "z")
        x = self._affine_inverse(z)  # (N, C, H, W)
        self._save_cache("inverse", x)
        return x, self._logdet(z, -1.0)

    def backward(self, dz, dlogdet):
        x = self._take_cache("forward", "backward")
        xp = get_array_module(x)
        axes = channel_axes(x)
        spatial = math.prod(x.shape[2:])
        scale = xp.exp(per_channel(self._own_params["log_scale"], x))
        # logdet = H W sum_c log_scale_c, the same for every sample
        dlog_scale = spatial * dlogdet.sum()
        # z = x * scale + bias
        self._own_grads["bias"] += dz.sum(axis=axes)  # (C,)
        self._own_grads["log_scale"] += (dz * x * scale).sum(axis=axes) + dlog_scale  # (C,)
        return dz * scale  # (N, C, H, W)

    def inverse_backward(self, dx, dlogdet):
        x = self._take_cache("inverse", "inverse_backward")
        xp = get_array_module(x)
        axes = channel_axes(x)
        spatial = math.prod(x.shape[2:])
        inv_scale = xp.exp(-per_channel(self._own_params["log_scale"], x))
        # logdet = -H W sum_c log_scale_c
        dlog_scale = -spatial * dlogdet.sum()
        # x = (z - bias) * exp(-log_scale): dx/dz = exp(-log_scale), dx/dbias = -exp(-log_scale),
        # dx/dlog_scale = -x
        dz = dx * inv_scale  # (N, C, H, W)
        self._own_grads["bias"] -= dz.sum(axis=axes)  # (C,)
        self._own_grads["log_scale"] -= (dx * x).sum(axis=axes)  # (C,)
        self._own_grads["log_scale"] += dlog_scale
        return dz

    # -- memory by inversion: the affine map with the current parameters, never the initialisation --

    def recompute_error(self, direction):
        """None: both directions rebuild by the affine map (below)."""
        _check_direction(direction)

    def rebuild_input(self, out, direction):
        _check_direction(direction)
        # the pass that made ``out`` ran with these parameters (a forward initialises before it maps)
        return self._affine_inverse(out) if direction == "forward" else self._affine(out)

    def rebuild_pass(self, out, direction):
        inp = self.rebuild_input(out, direction)
        self._save_cache(direction, inp if direction == "forward" else out)  # both caches hold x
        return inp
