"""GELU, the Gaussian error linear unit, in its tanh approximation.

Hendrycks & Gimpel (2016), "Gaussian Error Linear Units (GELUs)",
arXiv:1606.08415, section 2: GELU(x) = x Phi(x), approximated by

    u = c (x + 0.044715 x^3),  c = sqrt(2 / pi)
    y = 0.5 x (1 + tanh(u))
    dy/dx = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) c (1 + 3 * 0.044715 x^2)

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
        forward keeps x and tanh(u) (the derivative needs both; tanh(u)
        saves recomputing a tanh).
    """

    def forward(self, x):
        xp = get_array_module(x)
        # in place on one scratch array: each elementwise pass over (N, T, mK) costs as much as its arithmetic
        tanh_u = x * x  # x^2
        tanh_u *= _C * _A
        tanh_u += _C  # c (1 + a x^2)
        tanh_u *= x  # u = c (x + a x^3)
        xp.tanh(tanh_u, out=tanh_u)
        self._save_cache("forward", (x, tanh_u))
        y = tanh_u + 1
        y *= x
        y *= 0.5
        return y  # 0.5 x (1 + tanh(u))

    def backward(self, dy):
        x, tanh_u = self._take_cache("forward", "backward")
        # y = 0.5 x (1 + tanh(u)): product rule, then tanh' = 1 - tanh^2 and du/dx = c (1 + 3a x^2)
        #   dy/dx = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) c (1 + 3a x^2)
        u_prime = x * x
        u_prime *= 3 * _A * _C
        u_prime += _C  # c (1 + 3a x^2)
        slope = tanh_u * tanh_u
        slope -= 1
        slope *= u_prime  # -(1 - tanh^2) u'(x)
        slope *= x
        slope -= tanh_u
        slope -= 1
        slope *= -0.5  # dy/dx
        slope *= dy
        return slope
