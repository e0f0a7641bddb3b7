"""Additive coupling layer for vectors (NICE; Dinh, Krueger & Bengio 2014, arXiv:1410.8516).

Direction: forward maps data x to latent z.

    forward:  z_a = x_a,  z_b = x_b + t(x_a)
    inverse:  x_a = z_a,  x_b = z_b - t(z_a)
    log|det dz/dx| = 0      (triangular Jacobian with ones on the diagonal:
                             volume preserving)
"""

from ..backend import DEFAULT_DTYPE, get_array_module
from .coupling import Coupling

__all__ = ["AdditiveCoupling"]


class AdditiveCoupling(Coupling):
    """NICE additive coupling, z_b = x_b + t(x_a); volume preserving.

    Args:
        dim, mask, hidden, activation, dtype, rng, init: see ``Coupling``.

    Shapes:
        x, z: (N, D); logdet: (N,) of zeros.

    Caches:
        nothing of its own (dz_b/dx_b = 1); the conditioner keeps its input.

    Reference:
        Dinh, Krueger & Bengio (2014), "NICE", section 3.2.
    """

    def __init__(self, dim, mask, hidden=(64, 64), activation="relu", dtype=DEFAULT_DTYPE, rng=None, init="uniform"):
        super().__init__(dim, mask, hidden, 1, activation, dtype, rng, init)

    def forward(self, x):
        self._check_input(x, "x")
        xp = get_array_module(x)
        self._start_pass("forward", "inverse")
        x_a, x_b = self._split(x)
        z_b = x_b + self.net.forward(x_a)
        self._save_cache("forward", True)
        return self._merge(x_a, z_b), xp.zeros(x.shape[0], dtype=x.dtype)

    def inverse(self, z):
        self._check_input(z, "z")
        xp = get_array_module(z)
        self._start_pass("inverse", "forward")
        z_a, z_b = self._split(z)
        x_b = z_b - self.net.forward(z_a)
        self._save_cache("inverse", True)
        return self._merge(z_a, x_b), xp.zeros(z.shape[0], dtype=z.dtype)

    def backward(self, dz, dlogdet):
        self._take_cache("forward", "backward")
        dz_a, dz_b = self._split(dz)
        # z_b = x_b + t(x_a): dx_b = dz_b, dt = dz_b; logdet is constant
        dx_a = dz_a + self.net.backward(dz_b)
        return self._merge(dx_a, dz_b)

    def inverse_backward(self, dx, dlogdet):
        self._take_cache("inverse", "inverse_backward")
        dx_a, dx_b = self._split(dx)
        # x_b = z_b - t(z_a): dz_b = dx_b, dt = -dx_b
        dz_a = dx_a + self.net.backward(-dx_b)
        return self._merge(dz_a, dx_b)
