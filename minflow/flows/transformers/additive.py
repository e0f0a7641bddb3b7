"""Additive transformer: y = x + t (NICE; Dinh, Krueger & Bengio 2014, arXiv:1410.8516).

Direction: forward maps data x to latent y. One raw parameter per entry,
t = params[:, 0]:

    forward:  y = x + t        log dy/dx = 0   (volume preserving)
    inverse:  x = y - t
    gradients: forward dx = dy, dt = dy;  inverse dy = dx, dt = -dx
"""

from ...backend import get_array_module
from .base import Transformer

__all__ = ["Additive"]


class Additive(Transformer):
    """Elementwise shift y = x + t; one raw parameter per entry, log-det zero.

    Shapes:
        x, y, logdet: (N, *S); params: (N, 1, *S) = [t].

    Caches:
        a marker of the pass only (dy/dx = 1 needs no values).

    Reference:
        Dinh, Krueger & Bengio (2014), "NICE", section 3.2.
    """

    n_params = 1

    def forward(self, x, params):
        self.check_params(x, params)
        self._save_cache("forward", True)
        return x + params[:, 0], get_array_module(x).zeros_like(x)

    def inverse(self, y, params):
        self.check_params(y, params)
        self._save_cache("inverse", True)
        return y - params[:, 0], get_array_module(y).zeros_like(y)

    def backward(self, dy, dlogdet):
        self._take_cache("forward", "backward")
        return dy, dy[:, None]  # y = x + t

    def inverse_backward(self, dx, dlogdet):
        self._take_cache("inverse", "inverse_backward")
        return dx, -dx[:, None]  # x = y - t
