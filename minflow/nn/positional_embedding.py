"""Learned positional embedding: add a trained vector for each position of a token sequence.

Attention is blind to order (it treats its input as a set); adding a learned
vector P_t to the token at position t tells the network where each token
sits (Vaswani et al. 2017, arXiv:1706.03762, section 3.5, learned variant;
GPT-2 and ViT learn theirs the same way).

    y[:, t] = x[:, t] + P[t]
    dx = dy,   dP[t] = sum_n dy[n, t]
"""

from ..backend import DEFAULT_DTYPE, normal
from .module import Module

__all__ = ["PositionalEmbedding"]


class PositionalEmbedding(Module):
    """Adds a learned vector per position.

    Args:
        n_positions: T, the longest sequence.
        features: K, the token width.
        dtype, rng: parameter dtype and generator; P starts as N(0, 0.02^2)
            (GPT-2's choice).

    Shapes:
        x: (N, T', K) with T' <= T -> y: (N, T', K); P: (T, K).
        ``forward_at(x_t, t)``: one token (N, 1, K) at position t.

    Caches:
        none: dx = dy, and dP needs only dy. The backward must know T', kept
        as a number.
    """

    def __init__(self, n_positions, features, dtype=DEFAULT_DTYPE, *, rng):
        super().__init__()
        self.n_positions, self.features = int(n_positions), int(features)
        self.add_param("P", normal((self.n_positions, self.features), dtype, rng, scale=0.02))

    def forward(self, x):
        if x.ndim != 3 or x.shape[1] > self.n_positions or x.shape[2] != self.features:
            raise ValueError(
                f"PositionalEmbedding({self.n_positions}, {self.features}) expects x of shape (N, T, {self.features}) "
                f"with T <= {self.n_positions}; got {tuple(x.shape)}."
            )
        self._save_cache("forward", x.shape[1])
        return x + self._own_params["P"][: x.shape[1]]  # (N, T', K)

    def forward_at(self, x_t, t):
        """The token at position t alone, (N, 1, K) -> (N, 1, K) (sequential sampling; no backward)."""
        return x_t + self._own_params["P"][t]

    def backward(self, dy):
        t = self._take_cache("forward", "backward")
        self._own_grads["P"][:t] += dy.sum(axis=0)  # (T', K)
        return dy
