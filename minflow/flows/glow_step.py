"""One step of Glow's flow: ActNorm, an invertible linear map, a coupling (Kingma & Dhariwal 2018, arXiv:1807.03039, section 3, Figure 2a).

Direction: forward maps data x to latent z, through the three layers in order:

    h1 = actnorm(x),   h2 = W h1 (per pixel),   z = coupling(h2)
    inverse: the inverses in the reverse order
    log|det dz/dx| = logdet_actnorm + logdet_W + logdet_coupling

A GlowStep is a ``Flow`` of its three named layers, so it composes, and
trains with memory by inversion, as any flow does.

The channel mixing can be Glow's learned invertible linear map / 1x1
convolution (LU or plain form) or, for the ablation of Glow's section 5.1,
a fixed reversal or shuffle of the channels. The coupling is any Bijection
on the same shapes: ``AffineCoupling`` / ``AdditiveCoupling`` for vectors
(N, D), an image coupling for (N, C, H, W).
"""

import numpy

from ..backend import DEFAULT_DTYPE, to_numpy, uniform
from .actnorm import ActNorm
from .additive_coupling import AdditiveCoupling
from .affine_coupling import AffineCoupling
from .base import Bijection
from .flow import Flow
from .invertible_linear import InvertibleLinear, InvertibleLinearLU
from .masks import half_mask
from .permutation import Permutation, Reverse

__all__ = ["MIXINGS", "GlowStep", "make_mixing"]

MIXINGS = ("lu", "plain", "reverse", "shuffle")


def make_mixing(features, mixing="lu", dtype=DEFAULT_DTYPE, *, rng):
    """The channel-mixing layer of a Glow step.

    Args:
        features: C, the size of axis 1 (D for vectors).
        mixing: "lu" (InvertibleLinearLU, Glow's default), "plain"
            (InvertibleLinear), "reverse" (Reverse, RealNVP's choice) or
            "shuffle" (a fixed random Permutation drawn from ``rng``).
        dtype, rng: parameter dtype; random generator (required keyword).
    """
    if mixing not in MIXINGS:
        raise ValueError(f"mixing must be one of {MIXINGS}; got {mixing!r}.")
    if mixing == "lu":
        return InvertibleLinearLU(features, dtype=dtype, rng=rng)
    if mixing == "plain":
        return InvertibleLinear(features, dtype=dtype, rng=rng)
    if mixing == "reverse":
        return Reverse(features)
    keys = to_numpy(uniform((features,), 0.0, 1.0, numpy.float64, rng))  # (C,)
    return Permutation(numpy.argsort(keys))  # a uniform random permutation


class GlowStep(Flow):
    """ActNorm -> channel mixing -> coupling: a Flow of three named layers.

    Args:
        features: the size of axis 1, D features of vectors or C channels of images.
        coupling: the coupling Bijection, built for the same shapes.
        mixing: "lu", "plain", "reverse" or "shuffle" (see ``make_mixing``).
        actnorm: include the ActNorm layer (default True).
        dtype, rng: parameter dtype; random generator for the mixing.

    Shapes:
        x, z: (N, C) or (N, C, H, W), whatever the coupling takes; logdet: (N,).

    Children (attributes and parameter names): ``actnorm`` (None without
    ActNorm), ``mixing``, ``coupling``; ``layers`` lists them in forward order.

    Caches:
        as ``Flow``: none of its own unless ``recompute="invert"``; each layer
        keeps what its own backward needs.

    Reference:
        Kingma & Dhariwal (2018), "Glow", section 3 and Figure 2a.
    """

    def __init__(self, features, coupling, mixing="lu", actnorm=True, dtype=DEFAULT_DTYPE, *, rng):
        if not isinstance(coupling, Bijection):
            raise TypeError(f"GlowStep expects a coupling Bijection; got {type(coupling).__name__}.")
        layers = {"actnorm": ActNorm(features, dtype=dtype)} if actnorm else {}
        layers["mixing"] = make_mixing(features, mixing, dtype, rng=rng)
        layers["coupling"] = coupling
        super().__init__(layers)  # forward order: actnorm, mixing, coupling
        self.features = features
        self.actnorm = layers.get("actnorm")
        self.mixing = layers["mixing"]
        self.coupling = coupling

    @classmethod
    def for_vectors(
        cls, features, hidden=(64, 64), coupling="affine", mixing="lu", actnorm=True, dtype=DEFAULT_DTYPE, *, rng
    ):
        """A Glow step on vectors (N, D) with a vector coupling that copies the first half.

        Args:
            features: D.
            hidden: the coupling conditioner's hidden widths.
            coupling: "affine" (``AffineCoupling``) or "additive" (``AdditiveCoupling``).
            mixing, actnorm, dtype, rng: as for ``GlowStep``.
        """
        if coupling == "affine":
            layer = AffineCoupling(features, half_mask(features), hidden=hidden, dtype=dtype, rng=rng)
        elif coupling == "additive":
            layer = AdditiveCoupling(features, half_mask(features), hidden=hidden, dtype=dtype, rng=rng)
        else:
            raise ValueError(f"coupling must be 'affine' or 'additive'; got {coupling!r}.")
        return cls(features, layer, mixing=mixing, actnorm=actnorm, dtype=dtype, rng=rng)
