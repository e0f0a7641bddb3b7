"""GELU, the Gaussian error linear unit, in its tanh approximation.

Hendrycks & Gimpel (2016), "Gaussian Error Linear Units (GELUs)",
arXiv:1606.08415, section 2: GELU(x) = x Phi(x), approximated by

    u = c (x + 0.044715 x^3),  c = sqrt(2 / pi)
    y = 0.5 x (1 + tanh(u))
    dy/dx = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) c (1 + 3 * 0.044715 x^2)

With s = 0.5 (1 + tanh(u)) (so y = x s) and 1 - tanh^2 = 4 s (1 - s), the
derivative reads dy/dx = s (1 + 2 x u' (1 - s)), u' = c (1 + 3 * 0.044715 x^2):
fewer passes over the (N, T, m K) activations than the sum above.

The tanh form (used by GPT-2 and BERT; PyTorch's ``GELU(approximate="tanh")``)
needs no erf, which NumPy lacks; it differs from x Phi(x) by at most about
1e-3 (Hendrycks & Gimpel, section 2).
"""

import math

from ..backend import get_array_module
from .module import Module

__all__ = ["GELU"]

_C = math.sqrt(2 / math.pi)
_A = 0.044715


class GELU(Module):
    """y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Shapes: any -> same.

    Caches:
        forward keeps x and s = 0.5 (1 + tanh(u)) (the derivative needs
        both; s saves recomputing a tanh).
    """

    def forward(self, x):
        xp = get_array_module(x)
        # in place on one scratch array: each elementwise pass over (N, T, mK) costs as much as its arithmetic
        s = x * x  # x^2
        s *= _C * _A
        s += _C  # c (1 + a x^2)
        s *= x  # u = c (x + a x^3)
        xp.tanh(s, out=s)
        s *= 0.5
        s += 0.5  # s = 0.5 (1 + tanh(u))
        self._save_cache("forward", (x, s))
        return x * s  # y = 0.5 x (1 + tanh(u))

    def backward(self, dy):
        x, s = self._take_cache("forward", "backward")
        # y = x s: product rule, then ds/dx = 0.5 (1 - tanh^2) u' = 2 s (1 - s) u' with u' = c (1 + 3a x^2)
        #   dy/dx = s + 2 x s (1 - s) u' = s (1 + 2 x u' (1 - s))
        slope = x * x
        slope *= 6 * _A * _C
        slope += 2 * _C  # 2 u' = 2c (1 + 3a x^2)
        slope *= x  # 2 x u'
        slope *= 1 - s
        slope += 1
        slope *= s  # dy/dx
        slope *= dy
        return slope
