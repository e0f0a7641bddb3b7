"""Elementwise activations with their derivatives, for conditioner networks.

    ReLU:       y = max(x, 0)              dy/dx = 1[x > 0]
    LeakyReLU:  y = x if x > 0 else a x    dy/dx = 1 if x > 0 else a
    Tanh:       y = tanh(x)                dy/dx = 1 - y^2

Each keeps the least it needs for backward (a mask or the output), never x
itself when the output will do. ReLU keeps its output: the layer after it
(a convolution or linear layer) keeps that same array as its input anyway,
so the cache costs no memory of its own, and y > 0 exactly where x > 0.
"""

from ..backend import get_array_module
from .module import Module

__all__ = ["LeakyReLU", "ReLU", "Tanh"]


class ReLU(Module):
    """y = max(x, 0). Shapes: any -> same. Caches: y, shared with the next layer's cache (y > 0 iff x > 0)."""

    def forward(self, x):
        y = get_array_module(x).maximum(x, 0)  # one pass, x's dtype and memory layout
        self._save_cache("forward", y)
        return y

    def backward(self, dy):
        y = self._take_cache("forward", "backward")
        return dy * (y > 0)


class LeakyReLU(Module):
    """y = x for x > 0, slope * x otherwise. Shapes: any -> same. Caches: the mask x > 0.

    Args:
        slope: the negative-side slope a (default 0.01).
    """

    def __init__(self, slope=0.01):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        xp = get_array_module(x)
        positive = x > 0
        self._save_cache("forward", positive)
        return xp.where(positive, x, self.slope * x)  # slope * x keeps x's dtype

    def backward(self, dy):
        xp = get_array_module(dy)
        positive = self._take_cache("forward", "backward")
        return xp.where(positive, dy, self.slope * dy)


class Tanh(Module):
    """y = tanh(x). Shapes: any -> same. Caches: y (since dy/dx = 1 - y^2)."""

    def forward(self, x):
        y = get_array_module(x).tanh(x)
        self._save_cache("forward", y)
        return y

    def backward(self, dy):
        y = self._take_cache("forward", "backward")
        return dy * (1 - y * y)
