"""LayerNorm: normalise each token's features to zero mean and unit variance, then scale and shift.

Ba, Kiros & Hinton (2016), "Layer Normalization", arXiv:1607.06450. Over the
last axis (K features), for every leading index (sample, token):

    mean = (1/K) sum_k x_k,   var = (1/K) sum_k (x_k - mean)^2,   rstd = 1 / sqrt(var + eps)
    xhat = (x - mean) * rstd,   y = gamma * xhat + beta

Backward (Karpathy's derivation, written for one row; every row alike):

    dgamma = sum_rows dy * xhat,   dbeta = sum_rows dy,   dxhat = dy * gamma
    dx = rstd * (dxhat - mean_k(dxhat) - xhat * mean_k(dxhat * xhat))

(the two means subtract the parts of dxhat that the normalisation removes:
a shift of every x_k, and a stretch along xhat.)
"""

from ..backend import DEFAULT_DTYPE, get_array_module, get_backend
from .module import Module

__all__ = ["LayerNorm"]


class LayerNorm(Module):
    """Layer normalisation over the last axis, with a learned scale ``gamma`` and shift ``beta``.

    Args:
        features: K, the size of the last axis.
        eps: added to the variance (1e-5, PyTorch's default).
        dtype: parameter dtype.

    Shapes:
        x: (..., K) -> y: (..., K); gamma, beta: (K,).

    Caches:
        forward keeps xhat (..., K) and rstd (..., 1): the backward is written
        in them alone (x and the mean are not needed again).
    """

    def __init__(self, features, eps=1e-5, dtype=DEFAULT_DTYPE):
        super().__init__()
        self.features, self.eps = int(features), float(eps)
        xp = get_backend()
        self.add_param("gamma", xp.ones(self.features, dtype=dtype))  # starts as the identity scale
        self.add_param("beta", xp.zeros(self.features, dtype=dtype))

    def forward(self, x):
        if x.shape[-1] != self.features:
            raise ValueError(
                f"LayerNorm({self.features}) expects x of shape (..., {self.features}); got {tuple(x.shape)}."
            )
        xp = get_array_module(x)
        # row sums by einsum: NumPy's .mean(axis=-1) over a short last axis goes one row at a time, several times slower
        mean = xp.einsum("...k->...", x)[..., None] / self.features  # (..., 1)
        xhat = x - mean  # (..., K), centred; scaled in place below
        var = xp.einsum("...k,...k->...", xhat, xhat)[..., None] / self.features  # (..., 1)
        rstd = 1 / (var + self.eps) ** 0.5  # (..., 1)
        xhat *= rstd  # (x - mean) * rstd
        self._save_cache("forward", (xhat, rstd))
        y = xhat * self._own_params["gamma"]
        y += self._own_params["beta"]
        return y  # (..., K)

    def backward(self, dy):
        xhat, rstd = self._take_cache("forward", "backward")
        xp = get_array_module(dy)
        k = self.features
        # y = gamma * xhat + beta
        self._own_grads["gamma"] += xp.einsum("rk,rk->k", dy.reshape(-1, k), xhat.reshape(-1, k))  # (K,)
        self._own_grads["beta"] += xp.einsum("rk->k", dy.reshape(-1, k))  # (K,)
        dxhat = dy * self._own_params["gamma"]  # (..., K)
        # xhat = (x - mean) * rstd: remove the mean shift and the stretch along xhat
        mean_dxhat = xp.einsum("...k->...", dxhat)[..., None] / k  # (..., 1)
        mean_dxhat_xhat = xp.einsum("...k,...k->...", dxhat, xhat)[..., None] / k  # (..., 1)
        dx = dxhat  # (..., K), a fresh array: work in place
        dx -= mean_dxhat
        dx -= xhat * mean_dxhat_xhat
        dx *= rstd
        return dx  # rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
