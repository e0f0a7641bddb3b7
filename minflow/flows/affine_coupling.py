"""Affine coupling layer for vectors (RealNVP; Dinh, Sohl-Dickstein & Bengio 2016, arXiv:1605.08803).

Direction: forward maps data x to latent z.

    x_a, x_b = split(x)                 (mask: True = copied)
    s_raw, t = net(x_a)                 conditioner, (N, Db) each
    s = scale * tanh(s_raw)             bounded log-scale (scale = 1 unless learnable)
    forward:  z_a = x_a,  z_b = x_b * exp(s) + t
    inverse:  x_a = z_a,  x_b = (z_b - t) * exp(-s)
    log|det dz/dx| = sum_j s_j          (triangular Jacobian, diagonal exp(s))
"""

from ..backend import DEFAULT_DTYPE, get_array_module
from .coupling import Coupling

__all__ = ["AffineCoupling"]


class AffineCoupling(Coupling):
    """RealNVP affine coupling, z_b = x_b * exp(s(x_a)) + t(x_a).

    Args:
        dim: D, the number of features.
        mask: boolean (D,), True = copied; see ``flows.masks``.
        hidden: conditioner hidden widths, default (64, 64) as in R2.
        learnable_scale: if True, s = scale * tanh(s_raw) with a learnable
            per-coordinate ``scale`` (Db,), initialised to 1; else scale = 1.
        activation, dtype, rng, init: see ``Coupling``.

    Shapes:
        x, z: (N, D); logdet: (N,).

    Caches:
        forward keeps x_b, exp(s) and tanh(s_raw): the backward needs all three
        (dz_b/ds = x_b exp(s), ds/ds_raw = scale (1 - tanh^2)); recomputing
        them would cost a conditioner pass. inverse keeps x_b, exp(-s), tanh.

    Reference:
        Dinh et al. (2016), "Density estimation using Real NVP", section 3.
    """

    def __init__(
        self,
        dim,
        mask,
        hidden=(64, 64),
        learnable_scale=False,
        activation="relu",
        dtype=DEFAULT_DTYPE,
        rng=None,
        init="uniform",
    ):
        super().__init__(dim, mask, hidden, 2, activation, dtype, rng, init)
        self.learnable_scale = learnable_scale
        if learnable_scale:
            xp = get_array_module(self.net.params["linear0.W"])
            self.add_param("scale", xp.ones(self.db, dtype=dtype))

    def _log_scale_and_shift(self, x_a):
        xp = get_array_module(x_a)
        h = self.net.forward(x_a)  # (N, 2 Db)
        s_raw, t = h[:, : self.db], h[:, self.db :]
        tanh_s = xp.tanh(s_raw)
        s = tanh_s * self._own_params["scale"] if self.learnable_scale else tanh_s
        return s, t, tanh_s

    def forward(self, x):
        self._check_input(x, "x")
        xp = get_array_module(x)
        self._start_pass("forward", "inverse")
        x_a, x_b = self._split(x)
        s, t, tanh_s = self._log_scale_and_shift(x_a)
        exp_s = xp.exp(s)
        z_b = x_b * exp_s + t
        self._save_cache("forward", (x_b, exp_s, tanh_s))
        return self._merge(x_a, z_b), s.sum(axis=1)

    def inverse(self, z):
        self._check_input(z, "z")
        xp = get_array_module(z)
        self._start_pass("inverse", "forward")
        z_a, z_b = self._split(z)
        s, t, tanh_s = self._log_scale_and_shift(z_a)
        exp_neg_s = xp.exp(-s)
        x_b = (z_b - t) * exp_neg_s
        self._save_cache("inverse", (x_b, exp_neg_s, tanh_s))
        return self._merge(z_a, x_b), -s.sum(axis=1)

    def _through_conditioner(self, ds, dt, tanh_s):
        """Backpropagate dL/ds and dL/dt through s = scale * tanh(s_raw) and the net."""
        xp = get_array_module(ds)
        if self.learnable_scale:
            scale = self._own_params["scale"]
            self._own_grads["scale"] += (ds * tanh_s).sum(axis=0)  # (Db,)
            ds = ds * scale
        ds_raw = ds * (1 - tanh_s * tanh_s)  # tanh' = 1 - tanh^2
        return self.net.backward(xp.concatenate([ds_raw, dt], axis=1))  # (N, Da)

    def backward(self, dz, dlogdet):
        x_b, exp_s, tanh_s = self._take_cache("forward", "backward")
        dz_a, dz_b = self._split(dz)
        # z_b = x_b * exp(s) + t
        dx_b = dz_b * exp_s
        dt = dz_b
        # logdet = sum_j s_j, so every s_j also receives dlogdet
        ds = dz_b * x_b * exp_s + dlogdet[:, None]
        # z_a = x_a, and x_a also feeds the conditioner
        dx_a = dz_a + self._through_conditioner(ds, dt, tanh_s)
        return self._merge(dx_a, dx_b)

    def inverse_backward(self, dx, dlogdet):
        x_b, exp_neg_s, tanh_s = self._take_cache("inverse", "inverse_backward")
        dx_a, dx_b = self._split(dx)
        # x_b = (z_b - t) * exp(-s)
        dz_b = dx_b * exp_neg_s
        dt = -dz_b
        # dx_b/ds = -x_b; logdet = -sum_j s_j
        ds = -dx_b * x_b - dlogdet[:, None]
        # x_a = z_a, and z_a also feeds the conditioner
        dz_a = dx_a + self._through_conditioner(ds, dt, tanh_s)
        return self._merge(dz_a, dz_b)
