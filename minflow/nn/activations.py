"""Elementwise activations with their derivatives, for conditioner networks.

    ReLU:       y = max(x, 0)              dy/dx = 1[x > 0]
    LeakyReLU:  y = x if x > 0 else a x    dy/dx = 1 if x > 0 else a
    Tanh:       y = tanh(x)                dy/dx = 1 - y^2

Each keeps the least it needs for backward (a mask or the output), never x
itself when the output will do.
"""

from ..backend import get_array_module
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "Tanh"]


class ReLU(Module):
    """y = max(x, 0). Shapes: any -> same. Caches: the mask x > 0 (bool, 1 byte/entry)."""

    def forward(self, x):
        positive = x > 0
        self._save_cache("forward", positive)
        return x * positive

    def backward(self, dy):
        positive = self._take_cache("forward", "backward")
        return dy * positive


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
