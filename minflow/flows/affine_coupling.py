"""Affine coupling layer for vectors (RealNVP; Dinh, Sohl-Dickstein & Bengio 2016, arXiv:1605.08803).

Direction: forward maps data x to latent z.

    x_a, x_b = split(x)                 (mask: True = copied)
    s_raw, t = net(x_a)                 conditioner, (N, Db) each
    s = scale * tanh(s_raw)             bounded log-scale (scale = 1 unless learnable)
    forward:  z_a = x_a,  z_b = x_b * exp(s) + t
    inverse:  x_a = z_a,  x_b = (z_b - t) * exp(-s)
    log|det dz/dx| = sum_j s_j          (triangular Jacobian, diagonal exp(s))

A ``Coupling`` (split, conditioner, transformer) whose conditioner stage can
end in two hooks, where the log-scale is made from the net's output and where
its gradient goes back into the net: ``_log_scale_and_shift`` and
``_through_conditioner``. A subclass that overrides the pair tries another
scale function (lesson 08 compares four); the transformer is then the plain
``Affine("exp")``, y = x * exp(s) + t with s as given. The default scale,
s = tanh(s_raw) without a learnable bound, is ``Affine("tanh")``'s own: the
transformer keeps tanh(s_raw) as s, one array, and the net's output is freed.
"""

from ..backend import DEFAULT_DTYPE, get_array_module
from .coupling import VECTOR_HINT, Coupling, mlp_conditioner
from .transformers.affine import Affine, bounded_log_scale, bounded_log_scale_backward, sum_to_shape

__all__ = ["AffineCoupling", "ScaleHookCoupling"]

HOOKS = ("_log_scale_and_shift", "_through_conditioner")  # a subclass that overrides either runs both


class ScaleHookCoupling(Coupling):
    """A Coupling whose affine log-scale s = [scale *] tanh(s_raw), or a subclass's, the conditioner stage makes.

    Args:
        split, net, event_shape, hint: see ``Coupling``; the net returns
            2 Fb outputs on axis 1, [s_raw, t].
        n_transformed: Fb, transformed features or channels.
        scale_shape: shape of a learnable bound ``scale`` on s (initialised
            to 1), or None for s = tanh(s_raw).
        dtype: its dtype.

    Caches:
        with s = tanh(s_raw) (``Affine("tanh")``): the transformer's x_b and s.
        With a learnable scale or a subclass's hooks (``Affine("exp")``):
        per pass the hooks' cache (tanh(s_raw), which ds/ds_raw needs), and
        the transformer's x_b and exp(s) (see ``transformers.affine``).
    """

    def __init__(self, split, net, n_transformed, scale_shape, dtype, event_shape, hint=""):
        self.learnable_scale = scale_shape is not None
        own_hooks = any(getattr(type(self), hook) is not getattr(ScaleHookCoupling, hook) for hook in HOOKS)
        self.uses_hooks = self.learnable_scale or own_hooks
        super().__init__(split, net, Affine("exp") if self.uses_hooks else Affine("tanh"), event_shape, hint)
        self.fb = int(n_transformed)
        if self.learnable_scale:
            xp = get_array_module(next(iter(net.params.values())))
            self.add_param("scale", xp.ones(scale_shape, dtype=dtype))

    def _params(self, x_a):
        if not self.uses_hooks:
            return super()._params(x_a)  # [s_raw, t], a view of the net's output, for Affine("tanh")
        s, t, cache = self._log_scale_and_shift(x_a)
        return get_array_module(s).concatenate(
            [s[:, None], t[:, None]], axis=1
        ), cache  # (N, 2, Fb, ...), Affine("exp")'s

    def _params_backward(self, dparams, cache):
        if not self.uses_hooks:
            return super()._params_backward(dparams, cache)
        return self._through_conditioner(dparams[:, 0], dparams[:, 1], cache)

    def _log_scale_and_shift(self, x_a):
        """The conditioner and the bounded log-scale: s, t (N, Fb, ...) and tanh(s_raw) for the backward."""
        h = self.net.forward(x_a)  # (N, 2 Fb, ...)
        s, tanh_s = bounded_log_scale(h[:, : self.fb], self._own_params.get("scale"))
        return s, h[:, self.fb :], tanh_s

    def _through_conditioner(self, ds, dt, tanh_s):
        """Backpropagate dL/ds and dL/dt through s = scale * tanh(s_raw) and the net; returns dL/dx_a."""
        scale = self._own_params.get("scale")
        ds_raw, dscale = bounded_log_scale_backward(ds, tanh_s, scale)
        if scale is not None:
            self._own_grads["scale"] += sum_to_shape(dscale, scale.shape)
        return self.net.backward(get_array_module(ds).concatenate([ds_raw, dt], axis=1))


class AffineCoupling(ScaleHookCoupling):
    """RealNVP affine coupling, z_b = x_b * exp(s(x_a)) + t(x_a).

    Args:
        features: D, the number of features.
        mask: boolean (D,), True = copied; see ``flows.masks``.
        hidden: conditioner hidden widths, default (64, 64) as in R2.
        learnable_scale: if True, s = scale * tanh(s_raw) with a learnable
            per-coordinate ``scale`` (Db,), initialised to 1; else scale = 1.
        activation, init: the MLP conditioner's (Da -> hidden -> 2 Db, last
            layer zero, so the coupling starts as the identity).
        dtype, rng: parameter dtype and random generator.

    Shapes:
        x, z: (N, D); logdet: (N,).

    Caches:
        see ``ScaleHookCoupling``.

    Reference:
        Dinh et al. (2016), "Density estimation using Real NVP", section 3.
    """

    def __init__(
        self,
        features,
        mask,
        hidden=(64, 64),
        learnable_scale=False,
        activation="relu",
        dtype=DEFAULT_DTYPE,
        *,
        rng,
        init="uniform",
    ):
        split, net = mlp_conditioner(features, mask, 2, hidden, activation, init, dtype, rng=rng)
        self.features = features
        self.da, self.db = split.n_copied, split.n_transformed
        scale_shape = (self.db,) if learnable_scale else None
        super().__init__(split, net, self.db, scale_shape, dtype, (features,), VECTOR_HINT)
