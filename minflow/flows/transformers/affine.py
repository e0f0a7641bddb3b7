"""Affine transformer: y = x * exp(s) + t, with a bounded log-scale s (RealNVP; Dinh et al. 2016, arXiv:1605.08803).

Direction: forward maps data x to latent y. Per entry, from the raw
parameters (s_raw, t) = params[:, 0], params[:, 1]:

    s = scale_fn(s_raw)     "tanh":      s = tanh(s_raw)            |s| < 1 (R2, D8)
                            "learnable": s = scale * tanh(s_raw)    |s| < scale, scale learned
                            "exp":       s = s_raw                  unbounded
    forward:  y = x * exp(s) + t           log dy/dx = s
    inverse:  x = (y - t) * exp(-s)        log dx/dy = -s

Gradients (L any loss, dlogdet = dL/dlogdet):
    forward:  dx = dy exp(s),   dt = dy,   ds = dy x exp(s) + dlogdet
    inverse:  dy = dx exp(-s),  dt = -dy,  ds = -dx x - dlogdet      (dx/ds = -x)
    then ds_raw = ds * ds/ds_raw: 1 - tanh^2 ("tanh"), scale (1 - tanh^2) and
    dscale = sum of ds tanh ("learnable"), 1 ("exp").
"""

from ...backend import DEFAULT_DTYPE, get_array_module, get_backend
from .base import Transformer

__all__ = ["SCALES", "Affine", "bounded_log_scale", "bounded_log_scale_backward"]

SCALES = ("tanh", "learnable", "exp")


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
        scale: "tanh" (default), "learnable" (s = scale * tanh(s_raw)) or
            "exp" (s = s_raw, unbounded; scale = exp(s_raw)).
        scale_shape: shape of the learnable ``scale`` parameter, broadcast
            against one sample's entries S: (Db,) for vectors, (C, 1, 1) per
            channel of images. Only with scale="learnable".
        dtype, xp: dtype and array module of the learnable scale (initialised to 1);
            default the default dtype and backend.

    Shapes:
        x, y, logdet: (N, *S); params: (N, 2, *S) = [s_raw, t].

    Caches:
        each direction keeps its x, s and the scale function's tanh(s_raw)
        (for "tanh" s is that same array): the backward needs x (dy/ds =
        x exp(s)), s and tanh (ds/ds_raw). exp(+-s) is recomputed from s, one
        exp per entry for an array less.

    Reference:
        Dinh et al. (2016), "Density estimation using Real NVP", section 3.
    """

    n_params = 2

    def __init__(self, scale="tanh", scale_shape=None, dtype=None, xp=None):
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"Affine scale must be one of {SCALES}; got {scale!r}.")
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
        return bounded_log_scale(s_raw, self._own_params.get("scale"))

    def log_scale_backward(self, ds, cache):
        """ds_raw from ds; adds dL/dscale to the learnable scale's gradient."""
        if self.scale == "exp":
            return ds  # s = s_raw
        scale = self._own_params.get("scale")
        ds_raw, dscale = bounded_log_scale_backward(ds, cache, scale)
        if scale is not None:
            self._own_grads["scale"] += sum_to_shape(dscale, scale.shape)
        return ds_raw

    def forward(self, x, params):
        self.check_params(x, params)
        s, cache = self.log_scale(params[:, 0])  # (N, *S)
        y = x * get_array_module(x).exp(s) + params[:, 1]
        self._save_cache("forward", (x, s, cache))
        return y, s

    def inverse(self, y, params):
        self.check_params(y, params)
        s, cache = self.log_scale(params[:, 0])
        x = (y - params[:, 1]) * get_array_module(y).exp(-s)
        self._save_cache("inverse", (x, s, cache))
        return x, -s

    def backward(self, dy, dlogdet):
        x, s, cache = self._take_cache("forward", "backward")
        exp_s = get_array_module(x).exp(s)
        # y = x * exp(s) + t, logdet = s
        dx = dy * exp_s
        ds = dy * x * exp_s + dlogdet
        return dx, self._stack(self.log_scale_backward(ds, cache), dy)  # dt = dy

    def inverse_backward(self, dx, dlogdet):
        x, s, cache = self._take_cache("inverse", "inverse_backward")
        # x = (y - t) * exp(-s), logdet = -s
        dy = dx * get_array_module(x).exp(-s)
        ds = -dx * x - dlogdet  # dx/ds = -x
        return dy, self._stack(self.log_scale_backward(ds, cache), -dy)  # dt = -dy

    @staticmethod
    def _stack(ds_raw, dt):
        return get_array_module(ds_raw).concatenate([ds_raw[:, None], dt[:, None]], axis=1)  # (N, 2, *S)
