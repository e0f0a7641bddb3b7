"""Additive coupling layer for vectors (NICE; Dinh, Krueger & Bengio 2014, arXiv:1410.8516).

Direction: forward maps data x to latent z.

    forward:  z_a = x_a,  z_b = x_b + t(x_a)
    inverse:  x_a = z_a,  x_b = z_b - t(z_a)
    log|det dz/dx| = 0      (triangular Jacobian with ones on the diagonal:
                             volume preserving)

A ``Coupling`` with a feature split, an MLP conditioner and the ``Additive``
transformer.
"""

from ..backend import DEFAULT_DTYPE
from .coupling import VECTOR_HINT, Coupling, mlp_conditioner
from .transformers.additive import Additive

__all__ = ["AdditiveCoupling"]


class AdditiveCoupling(Coupling):
    """NICE additive coupling, z_b = x_b + t(x_a); volume preserving.

    Args:
        features: D. mask: boolean (D,), True = copied.
        hidden, activation, dtype, rng, init: the MLP conditioner's
            (Da -> hidden -> Db, last layer zero).

    Shapes:
        x, z: (N, D); logdet: (N,) of zeros.

    Caches:
        a marker of the pass (see ``Coupling``); the conditioner keeps its input.

    Reference:
        Dinh, Krueger & Bengio (2014), "NICE", section 3.2.
    """

    def __init__(self, features, mask, hidden=(64, 64), activation="relu", dtype=DEFAULT_DTYPE, *, rng, init="uniform"):
        split, net = mlp_conditioner(features, mask, 1, hidden, activation, init, dtype, rng=rng)
        super().__init__(split, net, Additive(), (features,), VECTOR_HINT)
