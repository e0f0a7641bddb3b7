"""MaskedLinear: a linear layer whose weight is multiplied by a fixed 0/1 mask (MADE's building block).

    y = x (W * M) + b                        x (N, D), W and M (D, K), b (K,), y (N, K)
    dx = dy (W * M)^T,  dW = (x^T dy) * M,  db = sum_n dy

Germain, Gregor, Murray & Larochelle (2015), "MADE: Masked Autoencoder for
Distribution Estimation", arXiv:1502.03509, section 4: the mask cuts the
connections that would let output k see inputs it must not depend on. The
masked entries of W start at zero and their gradient is zero, so they stay zero.
"""

from ..backend import DEFAULT_DTYPE, get_array_module, to_device, to_numpy
from .linear import Linear

__all__ = ["MaskedLinear"]


class MaskedLinear(Linear):
    """Fully connected layer y = x (W * M) + b with a fixed boolean mask M.

    Args:
        mask: bool (D, K) host array, True = connection kept (row: input, column: output).
        init, dtype, rng: as for ``Linear`` (the masked weights are then zeroed).

    Shapes:
        x: (N, D) -> y: (N, K).

    Caches:
        forward keeps x (for dW); W * M is recomputed (a (D, K) product, no batch axis).
    """

    def __init__(self, mask, init="uniform", dtype=DEFAULT_DTYPE, *, rng):
        mask = to_numpy(mask).astype(bool)
        if mask.ndim != 2:
            raise ValueError(f"MaskedLinear needs a 2-D mask (in_features, out_features); got shape {mask.shape}.")
        super().__init__(mask.shape[0], mask.shape[1], init=init, dtype=dtype, rng=rng)
        self.host_mask = mask  # (D, K) bool, on the host
        self._move_fixed_arrays(get_array_module(self._own_params["W"]))
        self._own_params["W"] *= self.mask  # masked connections start (and stay) at zero

    def _move_fixed_arrays(self, xp):
        super()._move_fixed_arrays(xp)
        self.mask = to_device(self.host_mask, xp)

    def forward(self, x):
        W, b = self._own_params["W"], self._own_params["b"]
        self._save_cache("forward", x)
        y = x @ (W * self.mask)  # (N, K)
        y += b
        return y

    def backward(self, dy):
        x = self._take_cache("forward", "backward")  # (N, D)
        W = self._own_params["W"]
        self._own_grads["W"] += (x.T @ dy) * self.mask  # (D, K)
        self._own_grads["b"] += dy.sum(axis=0)  # (K,)
        return dy @ (W * self.mask).T  # (N, D)
