"""Linear: the affine map y = x W + b, with its hand-written backward.

Forward:   y = x W + b                      x (N, D), W (D, K), b (K,), y (N, K)
Backward:  dx = dy W^T,  dW = x^T dy,  db = sum_n dy

Leading axes beyond N (tokens: x (N, T, D)) are rows like N: the sums run
over every row.
"""

import math

from ..backend import DEFAULT_DTYPE, get_array_module, normal, rng_module, uniform, zeros
from .module import Module

__all__ = ["INITS", "Linear"]

INITS = ("uniform", "normal", "xavier", "zeros")


class Linear(Module):
    """Fully connected layer y = x W + b.

    Args:
        in_features: D.
        out_features: K.
        init: how W and b start:
            "uniform": W, b ~ U(-1/sqrt(D), 1/sqrt(D)) (PyTorch's default);
            "normal":  W ~ N(0, 1/D), b = 0;
            "xavier":  W ~ U(-sqrt(6/(D+K)), sqrt(6/(D+K))), b = 0;
            "zeros":   W = 0, b = 0 (a last layer that starts a coupling as
                       the identity).
        dtype: parameter dtype (float32 for training, float64 for checks).
        rng: a random generator (``backend.make_rng(seed)``), a required keyword.

    Shapes:
        x: (N, D) -> y: (N, K); or (N, T, D) -> (N, T, K), every leading index a row.

    Caches:
        forward keeps x (needed for dW = x^T dy); backward releases it.
    """

    def __init__(self, in_features, out_features, init="uniform", dtype=DEFAULT_DTYPE, *, rng):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"Linear init must be one of {INITS}; got {init!r}.")
        d, k = in_features, out_features
        if init == "uniform":
            bound = 1 / math.sqrt(d)
            w = uniform((d, k), -bound, bound, dtype, rng)
            b = uniform((k,), -bound, bound, dtype, rng)
        elif init == "normal":
            w = normal((d, k), dtype, rng, scale=1 / math.sqrt(d))
            b = zeros((k,), dtype, get_array_module(w))
        elif init == "xavier":
            bound = math.sqrt(6 / (d + k))
            w = uniform((d, k), -bound, bound, dtype, rng)
            b = zeros((k,), dtype, get_array_module(w))
        else:
            w = zeros((d, k), dtype, rng_module(rng))
            b = zeros((k,), dtype, rng_module(rng))
        self.in_features, self.out_features = d, k
        self.add_param("W", w)
        self.add_param("b", b)

    def forward(self, x):
        W, b = self._own_params["W"], self._own_params["b"]
        self._save_cache("forward", x)
        # tokens (N, T, D) as one (N T, D) matrix: one large matrix product, not N small ones
        rows = x.reshape(-1, self.in_features)  # (rows, D)
        if self.in_features == 1:
            # D = 1 (R2's first layer): x W is the outer product x_n W_0k, one multiplication per entry,
            # the same numbers as the matrix product, which BLAS runs about 4x slower for one column;
            # einsum writes it about 1.5x faster than NumPy's broadcast rows * W[0]
            y = get_array_module(x).einsum("nd,dk->nk", rows, W)  # (rows, K)
        else:
            y = rows @ W  # (rows, K)
        y += b  # in place: no second (rows, K) array
        return y.reshape(*x.shape[:-1], self.out_features)  # (N, K) or (N, T, K)

    def backward(self, dy):
        x = self._take_cache("forward", "backward")  # (N, D) or (N, T, D)
        xp = get_array_module(dy)
        W = self._own_params["W"]
        rows_x = x.reshape(-1, self.in_features)  # (rows, D)
        rows_dy = dy.reshape(-1, self.out_features)  # (rows, K)
        self._own_grads["W"] += rows_x.T @ rows_dy  # (D, K)
        # sum over rows as ones^T dy: one BLAS pass, several times faster than NumPy's .sum(axis=0)
        self._own_grads["b"] += xp.ones(len(rows_dy), dtype=dy.dtype) @ rows_dy  # (K,)
        return (rows_dy @ W.T).reshape(x.shape)  # (N, D) or (N, T, D)
