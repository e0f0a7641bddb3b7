"""MLP: Linear layers with an activation between them (a coupling's conditioner).

    h_0 = x,  h_{i+1} = act(h_i W_i + b_i)  for hidden layers,  y = h_L W_L + b_L

with L = len(sizes) - 2 the index of the last Linear layer (no activation after it).
"""

from ..backend import DEFAULT_DTYPE
from .activations import LeakyReLU, ReLU, SiLU, Tanh
from .linear import Linear
from .module import Module

__all__ = ["ACTIVATIONS", "MLP"]

ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "silu": SiLU}


class MLP(Module):
    """A multilayer perceptron with a hand-written backward.

    Args:
        sizes: layer widths, e.g. (1, 64, 64, 2) for 1 -> 64 -> 64 -> 2.
        activation: "relu", "leaky_relu", "tanh" or "silu", between linear layers.
        init: init of the hidden linear layers (see ``Linear``).
        last_init: init of the last linear layer; "zeros" makes a coupling
            start as the identity map.
        dtype, rng: as for ``Linear``.

    Shapes:
        x: (N, sizes[0]) -> y: (N, sizes[-1]).

    Caches:
        none of its own; each Linear keeps its input and each activation its mask.
    """

    def __init__(self, sizes, activation="relu", init="uniform", last_init="zeros", dtype=DEFAULT_DTYPE, *, rng):
        super().__init__()
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"MLP sizes must be at least two positive widths, e.g. (2, 64, 2); got {sizes}.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"MLP activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}.")
        self.sizes = tuple(int(s) for s in sizes)
        self.layers = []
        n_linear = len(sizes) - 1
        for i in range(n_linear):
            last = i == n_linear - 1
            linear = Linear(sizes[i], sizes[i + 1], init=last_init if last else init, dtype=dtype, rng=rng)
            self.layers.append(self.add_child(f"linear{i}", linear))
            if not last:
                self.layers.append(self.add_child(f"act{i}", ACTIVATIONS[activation]()))

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy
