"""Affine transformer: y = x * exp(s) + t, with a bounded log-scale s (RealNVP; Dinh et al. 2016, arXiv:1605.08803).

Direction: forward maps data x to latent y. Per entry, from the raw
parameters (s_raw, t) = params[:, 0], params[:, 1]:

    s = scale_fn(s_raw)     "tanh":      s = tanh(s_raw)            |s| < 1 (R2, D8)
                            "learnable": s = scale * tanh(s_raw)    |s| < scale, scale learned
                            "exp":       s = s_raw                  unbounded
                            "softclip":  s = s_raw / (1 + |s_raw| / bound)
                                                                    |s| < bound, s ~ s_raw near 0 (MAF)
    forward:  y = x * exp(s) + t           log dy/dx = s
    inverse:  x = (y - t) * exp(-s)        log dx/dy = -s

Gradients (L any loss, dlogdet = dL/dlogdet):
    forward:  dx = dy exp(s),   dt = dy,   ds = dy x exp(s) + dlogdet
    inverse:  dy = dx exp(-s),  dt = -dy,  ds = -dx x - dlogdet      (dx/ds = -x)
    then ds_raw = ds * ds/ds_raw: 1 - tanh^2 ("tanh"), scale (1 - tanh^2) and
    dscale = sum of ds tanh ("learnable"), 1 ("exp"), 1 / (1 + |s_raw| / bound)^2
    ("softclip": with c = 1 + |s_raw| / bound, d(s_raw / c)/ds_raw = (c - |s_raw| / bound) / c^2).

The soft clip lets one layer scale by up to exp(bound) (bound = log 1000
by default: slopes between 1e-3 and 1e3) while it still keeps s finite; its
slope is 1 at s_raw = 0 and falls off as 1/s_raw^2, far slower than tanh's.
"""

import math

from ...backend import DEFAULT_DTYPE, get_array_module, get_backend
from .base import Transformer

__all__ = ["SCALES", "SOFTCLIP_BOUND", "Affine", "bounded_log_scale", "bounded_log_scale_backward"]

SCALES = ("tanh", "learnable", "exp", "softclip")
SOFTCLIP_BOUND = math.log(1e3)  # "softclip": |s| < log 1000, each layer's slope within (1e-3, 1e3)


def bounded_log_scale(s_raw, scale=None):
    """s = tanh(s_raw), or scale * tanh(s_raw) given a scale; returns (s, tanh(s_raw))."""
    tanh_s = get_array_module(s_raw).tanh(s_raw)
    return (tanh_s if scale is None else tanh_s * scale), tanh_s


def bounded_log_scale_backward(ds, tanh_s, scale=None):
    """ds_raw for s = [scale *] tanh(s_raw), and dL/dscale per entry (ds * tanh) or None."""
    dscale = None
    if scale is not None:
        dscale = ds * tanh_s  # ds/dscale = tanh(s_raw)
        ds = ds * scale
    return ds * (1 - tanh_s * tanh_s), dscale  # tanh' = 1 - tanh^2


def sum_to_shape(a, shape):
    """Sum a (N, *S) array over the batch and over the axes where ``shape`` (broadcast to S) is 1."""
    axes = (0,) + tuple(1 + i for i, n in enumerate(shape) if n == 1 and a.shape[1 + i] != 1)
    return a.sum(axis=axes).reshape(shape)


class Affine(Transformer):
    """Elementwise affine map y = x * exp(s) + t with s = scale_fn(s_raw); two raw parameters per entry.

    Args:
        scale: "tanh" (default), "learnable" (s = scale * tanh(s_raw)),
            "exp" (s = s_raw, unbounded; scale = exp(s_raw)) or "softclip"
            (s = s_raw / (1 + |s_raw| / bound)).
        bound: the soft clip's bound on |s| (only with scale="softclip"; default log 1000).
        scale_shape: shape of the learnable ``scale`` parameter, broadcast
            against one sample's entries S: (Db,) for vectors, (C, 1, 1) per
            channel of images. Only with scale="learnable".
        dtype, xp: dtype and array module of the learnable scale (initialised to 1);
            default the default dtype and backend.

    Shapes:
        x, y, logdet: (N, *S); params: (N, 2, *S) = [s_raw, t].

    Caches:
        each direction keeps its x, s and the scale function's tanh(s_raw)
        (for "tanh" s is that same array; for "softclip" 1 + |s_raw| / bound):
        the backward needs x (dy/ds = x exp(s)), s and that array (ds/ds_raw). exp(+-s) is recomputed from s, one
        exp per entry for an array less. For "exp", s is a view of params,
        which would keep t alive too: that direction keeps exp(+-s) instead.

    Reference:
        Dinh et al. (2016), "Density estimation using Real NVP", section 3.
    """

    n_params = 2

    def __init__(self, scale="tanh", scale_shape=None, dtype=None, xp=None, bound=None):
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"Affine scale must be one of {SCALES}; got {scale!r}.")
        if bound is not None and (scale != "softclip" or not bound > 0):
            raise ValueError(
                f"Affine bound is the positive bound of scale='softclip'; got bound={bound!r} with scale={scale!r}."
            )
        self.bound = float(bound if bound is not None else SOFTCLIP_BOUND) if scale == "softclip" else None
        if (scale == "learnable") != (scale_shape is not None):
            raise ValueError(
                "Affine needs scale_shape exactly when scale='learnable' (the shape of the learned bound)."
            )
        self.scale = scale
        if scale == "learnable":
            xp = xp if xp is not None else get_backend()
            self.add_param("scale", xp.ones(tuple(scale_shape), dtype=dtype if dtype is not None else DEFAULT_DTYPE))

    def log_scale(self, s_raw):
        """s = scale_fn(s_raw) and what its backward needs."""
        if self.scale == "exp":
            return s_raw, None
        if self.scale == "softclip":
            c = 1 + get_array_module(s_raw).abs(s_raw) / self.bound  # (N, *S), >= 1
            return s_raw / c, c
        return bounded_log_scale(s_raw, self._own_params.get("scale"))

    def log_scale_backward(self, ds, cache):
        """ds_raw from ds; adds dL/dscale to the learnable scale's gradient."""
        if self.scale == "exp":
            return ds  # s = s_raw
        if self.scale == "softclip":
            return ds / (cache * cache)  # ds/ds_raw = 1 / c^2
        scale = self._own_params.get("scale")
        ds_raw, dscale = bounded_log_scale_backward(ds, cache, scale)
        if scale is not None:
            self._own_grads["scale"] += sum_to_shape(dscale, scale.shape)
        return ds_raw

    def forward(self, x, params):
        self.check_params(x, params)
        s, cache = self.log_scale(params[:, 0])  # (N, *S)
        exp_s = get_array_module(x).exp(s)
        y = x * exp_s + params[:, 1]
        self._save_cache("forward", (x, exp_s if self.scale == "exp" else s, cache))
        return y, s

    def inverse(self, y, params):
        self.check_params(y, params)
        s, cache = self.log_scale(params[:, 0])
        exp_minus_s = get_array_module(y).exp(-s)
        x = (y - params[:, 1]) * exp_minus_s
        self._save_cache("inverse", (x, exp_minus_s if self.scale == "exp" else s, cache))
        return x, -s

    def backward(self, dy, dlogdet):
        x, s_or_exp_s, cache = self._take_cache("forward", "backward")
        exp_s = s_or_exp_s if self.scale == "exp" else get_array_module(x).exp(s_or_exp_s)
        # y = x * exp(s) + t, logdet = s
        dx = dy * exp_s
        ds = dy * x * exp_s + dlogdet
        return dx, self._stack(self.log_scale_backward(ds, cache), dy)  # dt = dy

    def inverse_backward(self, dx, dlogdet):
        x, s_or_exp_minus_s, cache = self._take_cache("inverse", "inverse_backward")
        exp_minus_s = s_or_exp_minus_s if self.scale == "exp" else get_array_module(x).exp(-s_or_exp_minus_s)
        # x = (y - t) * exp(-s), logdet = -s
        dy = dx * exp_minus_s
        ds = -dx * x - dlogdet  # dx/ds = -x
        return dy, self._stack(self.log_scale_backward(ds, cache), -dy)  # dt = -dy

    @staticmethod
    def _stack(ds_raw, dt):
        return get_array_module(ds_raw).concatenate([ds_raw[:, None], dt[:, None]], axis=1)  # (N, 2, *S)
