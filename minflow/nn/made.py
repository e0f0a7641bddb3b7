"""MADE: a masked MLP whose output for input d depends only on the inputs before d in a chosen order.

Germain, Gregor, Murray & Larochelle (2015), "MADE: Masked Autoencoder for
Distribution Estimation", arXiv:1502.03509, section 4. Every unit gets a
degree:

    inputs        m(d) = position of variable d in the order, 1..D
    hidden units  m(k) in 1..D-1, cycled over the layer's units (every degree present)
    outputs       m(o) = m(d) of the variable output o belongs to

and a connection from a unit of degree m to one of degree m' is kept when
m' >= m (into a hidden unit) or m' > m (into an output). A path from input j
to output o then needs m(j) < m(o): the Jacobian d out / d in is strictly
triangular in the order. With P outputs per input (a transformer's raw
parameters), output o = p * D + d, so a reshape to (N, P, D) gives the
transformers' params layout.
"""

import numpy

from ..backend import DEFAULT_DTYPE, to_numpy
from ..checks import require_rng
from .activations import ReLU
from .masked_linear import MaskedLinear
from .module import Module

__all__ = ["MADE", "ORDERS", "made_degrees"]

ORDERS = ("natural", "reversed", "random")


def made_degrees(features, order="natural", rng=None):
    """Degrees of the D inputs, a permutation of 1..D: "natural" (1, 2, ...), "reversed",
    "random" (drawn from ``rng``), or given as such a permutation."""
    if isinstance(order, str):
        if order not in ORDERS:
            raise ValueError(f"MADE order must be one of {ORDERS} or a permutation of 1..D; got {order!r}.")
        if order == "natural":
            return numpy.arange(1, features + 1)
        if order == "reversed":
            return numpy.arange(features, 0, -1)
        keys = to_numpy(require_rng(rng, 'made_degrees(order="random")').random(features))
        return numpy.argsort(numpy.argsort(keys)) + 1
    degrees = numpy.asarray(order)
    if sorted(degrees.tolist()) != list(range(1, features + 1)):
        raise ValueError(
            f"A MADE order given as degrees must be a permutation of 1..{features}; got {degrees.tolist()}."
        )
    return degrees


class MADE(Module):
    """Autoregressive MLP D -> hidden -> P * D with masked weights and ReLU between layers.

    Args:
        features: D, inputs (and variables of the outputs).
        hidden: widths of the hidden layers, e.g. (64, 64).
        n_params: P, outputs per input (a transformer's ``n_params``).
        order: "natural", "reversed", "random" or a permutation of 1..D
            (the inputs' degrees; see ``made_degrees``).
        init: init of the hidden layers (see ``Linear``); the last layer
            starts at zero (``last_init``), so a flow layer starts as the identity.
        dtype, rng: parameter dtype and random generator (also draws a random order).

    Shapes:
        x: (N, D) -> y: (N, P * D), y[:, p * D + d] depends only on the x_j
        with degrees[j] < degrees[d].

    Caches:
        none of its own; each MaskedLinear keeps its input, each ReLU its output.
    """

    def __init__(
        self,
        features,
        hidden=(64, 64),
        n_params=2,
        order="natural",
        init="uniform",
        last_init="zeros",
        dtype=DEFAULT_DTYPE,
        *,
        rng,
    ):
        super().__init__()
        if int(features) != features or features < 1 or int(n_params) != n_params or n_params < 1:
            raise ValueError(
                f"MADE needs positive integers features and n_params; got features={features!r}, n_params={n_params!r}."
            )
        self.features, self.n_params = int(features), int(n_params)
        self.degrees = made_degrees(self.features, order, rng)  # (D,), inputs
        units = [self.degrees]
        for width in hidden:
            units.append(numpy.arange(int(width)) % max(self.features - 1, 1) + 1)  # (K,), hidden
        out = numpy.tile(self.degrees, self.n_params)  # (P * D,), output p * D + d has variable d's degree
        self.layers = []
        for i, (m_in, m_out) in enumerate(zip(units, units[1:] + [out])):
            last = i == len(units) - 1
            mask = m_out[None, :] > m_in[:, None] if last else m_out[None, :] >= m_in[:, None]  # (in, out)
            layer = MaskedLinear(mask, init=last_init if last else init, dtype=dtype, rng=rng)
            self.layers.append(self.add_child(f"linear{i}", layer))
            if not last:
                self.layers.append(self.add_child(f"act{i}", ReLU()))

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x  # (N, P * D)

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy  # (N, D)
