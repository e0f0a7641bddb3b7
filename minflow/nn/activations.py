"""Elementwise activations with their derivatives, for conditioner networks.

    ReLU:       y = max(x, 0)              dy/dx = 1[x > 0]
    LeakyReLU:  y = x if x > 0 else a x    dy/dx = 1 if x > 0 else a
    Tanh:       y = tanh(x)                dy/dx = 1 - y^2
    SiLU:       y = x sigmoid(x)           dy/dx = s (1 + x (1 - s)),  s = sigmoid(x)

SiLU (Hendrycks & Gimpel 2016, arXiv:1606.08415; Elfwing et al. 2017,
arXiv:1702.03118) is smooth: a network built from it has continuous
derivatives of every order, which a velocity field needs when its
divergence (a first derivative) is integrated and differentiated again.

Each keeps the least it needs for backward (a mask or the output), never x
itself when the output will do. ReLU keeps its output: the layer after it
(a convolution or linear layer) keeps that same array as its input anyway,
so the cache costs no memory of its own, and y > 0 exactly where x > 0.
"""

from ..backend import get_array_module, sigmoid
from .module import Module

__all__ = ["LeakyReLU", "ReLU", "SiLU", "Tanh"]


class ReLU(Module):
    """y = max(x, 0). Shapes: any -> same. Caches: y, shared with the next layer's cache (y > 0 iff x > 0)."""

    def forward(self, x):
        y = get_array_module(x).maximum(x, 0)  # one pass, x's dtype and memory layout
        self._save_cache("forward", y)
        return y

    def backward(self, dy):
        y = self._take_cache("forward", "backward")
        dx = (y > 0).astype(dy.dtype)  # dy/dx = 1[x > 0], as y > 0 exactly where x > 0
        dx *= dy  # dL/dx = dL/dy dy/dx, in place: the products of dy * (y > 0), without its mixed-type loop
        return dx


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


class SiLU(Module):
    """y = x sigmoid(x) (also called swish). Shapes: any -> same. Caches: x (dy/dx needs it, not only y).

    ``derivative(x)`` gives dy/dx elementwise without touching the cache:
    forward-mode passes (a velocity field's divergence) push tangents
    through it as dy_tangent = derivative(x) * dx_tangent.
    """

    def forward(self, x):
        self._save_cache("forward", x)
        return x * sigmoid(x)

    @staticmethod
    def derivative(x):
        """dy/dx = s + x s (1 - s) = s (1 + x (1 - s)), s = sigmoid(x); shape of x."""
        s = sigmoid(x)
        return s * (1 + x * (1 - s))

    def backward(self, dy):
        x = self._take_cache("forward", "backward")
        return dy * self.derivative(x)
