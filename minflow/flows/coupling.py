"""Coupling: the split / condition / merge skeleton shared by NICE and RealNVP.

Direction: forward maps data x to latent z. A mask splits x into the copied
part x_a and the transformed part x_b; a conditioner network reads x_a and
says how to transform x_b:

    z_a = x_a,    z_b = g(x_b; net(x_a))

The Jacobian is block triangular (dz_a/dx_b = 0), so its determinant is
that of dz_b/dx_b alone: cheap, whatever the network. Subclasses define g.
"""

from ..backend import DEFAULT_DTYPE, get_array_module, make_rng, to_device
from ..nn.mlp import MLP
from .base import Bijection
from .masks import check_mask

__all__ = ["Coupling"]


class Coupling(Bijection):
    """Base class: masks a vector, runs the conditioner, merges the halves.

    Args:
        dim: D, the number of features.
        mask: boolean (D,), True = copied (x_a). See ``flows.masks``.
        hidden: widths of the conditioner MLP's hidden layers.
        out_per_dim: conditioner outputs per transformed coordinate
            (1 for a shift, 2 for a log-scale and a shift).
        activation, dtype, rng: passed to the MLP; its last layer starts at
            zero, so the coupling starts as the identity.

    Shapes:
        x, z: (N, D); x_a: (N, Da); x_b: (N, Db).

    Note:
        The conditioner keeps the cache of its most recent pass only, so
        running one direction invalidates the other direction's backward
        (a clear error, never a silently wrong gradient).
    """

    stateless = True  # the conditioner is a plain network: its caches are the only state

    def __init__(
        self,
        dim,
        mask,
        hidden=(64, 64),
        out_per_dim=2,
        activation="relu",
        dtype=DEFAULT_DTYPE,
        rng=None,
        init="uniform",
    ):
        super().__init__()
        mask = check_mask(mask, dim)
        rng = rng if rng is not None else make_rng(0)
        self.dim = dim
        self.mask = mask
        self.da, self.db = int(mask.sum()), int((~mask).sum())
        self.out_per_dim = out_per_dim
        sizes = (self.da, *hidden, out_per_dim * self.db)
        self.net = self.add_child(
            "net", MLP(sizes, activation=activation, init=init, last_init="zeros", dtype=dtype, rng=rng)
        )
        xp = get_array_module(self.net.params["linear0.W"])
        self.idx_a = to_device(mask.nonzero()[0], xp)  # copied coordinates, (Da,)
        self.idx_b = to_device((~mask).nonzero()[0], xp)  # transformed ones, (Db,)

    def _move_fixed_arrays(self, xp):
        super()._move_fixed_arrays(xp)
        self.idx_a = to_device(self.idx_a, xp)
        self.idx_b = to_device(self.idx_b, xp)

    def _check_input(self, x, name):
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"{type(self).__name__} expects {name} of shape (N, {self.dim}); got {tuple(x.shape)}. "
                "For images use an image coupling (flows.image_coupling) or Squeeze."
            )

    def _split(self, x):
        return x[:, self.idx_a], x[:, self.idx_b]  # (N, Da), (N, Db)

    def _merge(self, a, b):
        xp = get_array_module(a)
        out = xp.empty((a.shape[0], self.dim), dtype=a.dtype)
        out[:, self.idx_a] = a
        out[:, self.idx_b] = b
        return out  # (N, D)

    def _start_pass(self, name, other):
        """Running a pass overwrites the conditioner's cache: drop the other pass's cache."""
        if hasattr(self, "_caches"):
            self._caches.pop(other, None)
