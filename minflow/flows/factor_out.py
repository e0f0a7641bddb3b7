"""FactorOut: the multi-scale split of RealNVP, as one bijection over the whole image.

Dinh, Sohl-Dickstein & Bengio (2016), arXiv:1605.08803, section 3.6: after a
squeeze, half of the channels are "factored out" and go straight to the
base distribution, while the rest go on through more layers. Written as a
bijection that keeps the factored channels in place, the whole model maps x
to ONE latent tensor of the same size, and the base is N(0, I) over all of it.
Direction: forward maps data x to latent z.

    forward:  z[:, :k] = inner.forward(x[:, :k]),   z[:, k:] = x[:, k:]
    inverse:  x[:, :k] = inner.inverse(z[:, :k]),   x[:, k:] = z[:, k:]
    log|det dz/dx| = the inner flow's log-det   (block-diagonal Jacobian, identity block for x[:, k:])
"""

from ..backend import get_array_module
from .base import Bijection, _check_direction

__all__ = ["FactorOut"]


class FactorOut(Bijection):
    """Run ``inner`` on the first ``keep`` channels; the others pass unchanged to the latent.

    Args:
        inner: a Bijection on (N, keep, H, W) images (e.g. a ``Flow`` of couplings).
        keep: how many leading channels go on through ``inner``; channels
            keep: are factored out (D8: keep = 2 of 4, channels 2:4 factored out).

    Shapes:
        x, z: (N, C, H, W), C > keep; inner sees (N, keep, H, W); logdet: (N,).

    Caches:
        none of its own: the factored channels pass unchanged, so their
        gradient is the upstream one; ``inner`` keeps what it needs.

    Reference:
        Dinh et al. (2016), "Density estimation using Real NVP", section 3.6.
    """

    def __init__(self, inner, keep):
        super().__init__()
        if not isinstance(inner, Bijection):
            raise TypeError(f"FactorOut needs a Bijection as inner flow; got {type(inner).__name__}.")
        if int(keep) != keep or keep < 1:
            raise ValueError(f"FactorOut keep must be a positive number of channels; got {keep!r}.")
        self.inner = self.add_child("inner", inner)
        self.keep = int(keep)

    def _check_input(self, x, name):
        if x.ndim != 4 or x.shape[1] <= self.keep:
            raise ValueError(
                f"FactorOut expects {name} of shape (N, C, H, W) with C > keep = {self.keep}; got {tuple(x.shape)}."
            )

    def _join(self, a, b):
        return get_array_module(a).concatenate([a, b], axis=1)  # (N, C, H, W)

    def forward(self, x):
        self._check_input(x, "x")
        z_kept, logdet = self.inner.forward(x[:, : self.keep])  # (N, keep, H, W)
        return self._join(z_kept, x[:, self.keep :]), logdet

    def inverse(self, z):
        self._check_input(z, "z")
        x_kept, logdet = self.inner.inverse(z[:, : self.keep])
        return self._join(x_kept, z[:, self.keep :]), logdet

    def backward(self, dz, dlogdet):
        # z = [inner(x_kept), x_factored]
        return self._join(self.inner.backward(dz[:, : self.keep], dlogdet), dz[:, self.keep :])

    def inverse_backward(self, dx, dlogdet):
        # x = [inner^-1(z_kept), z_factored]
        return self._join(self.inner.inverse_backward(dx[:, : self.keep], dlogdet), dx[:, self.keep :])

    # -- memory by inversion: the factored channels are their own input ---------

    def recompute_error(self, direction):
        """None: the inner flow answers for itself."""
        _check_direction(direction)

    def rebuild_input(self, out, direction):
        return self._join(self.inner.rebuild_input(out[:, : self.keep], direction), out[:, self.keep :])

    def rebuild_pass(self, out, direction):
        return self._join(self.inner.rebuild_pass(out[:, : self.keep], direction), out[:, self.keep :])
