"""Multi-head causal self-attention, with its backward written out and a key/value cache.

Vaswani et al. (2017), "Attention Is All You Need", arXiv:1706.03762,
sections 3.2.1-3.2.3; the causal mask as in GPT (Radford et al. 2018).
For tokens x (N, T, K), H heads of width Dh = K / H:

    q, k, v = split(x W_qkv + b_qkv)                    (N, H, T, Dh) each
    S = q k^T / sqrt(Dh),  S[i, j] = -inf for j > i     (N, H, T, T)  token i sees tokens j <= i
    P = softmax(S) along j                              (N, H, T, T)
    O = P v,  y = merge(O) W_o + b_o                    (N, H, T, Dh) -> (N, T, K)

Backward, the chain through the softmax (rows of P sum to one, so the
Jacobian of a row is diag(P) - P P^T):

    dP = dO v^T,   dv = P^T dO
    dS = P * (dP - sum_j dP * P)                        (masked entries: P = 0, so dS = 0)
    dq = dS k / sqrt(Dh),   dk = dS^T q / sqrt(Dh)

Sequential sampling runs one token at a time: ``step`` computes the new
token's query, key and value, appends the key and value to the cache, and
attends over every cached position (all of them are in its past, so no mask
is needed). T steps give the same outputs as one causal ``forward``.
"""

import math

from ..backend import DEFAULT_DTYPE, get_array_module
from .linear import Linear
from .module import Module

__all__ = ["CausalSelfAttention"]


def _split_heads(a, n_heads):
    """(N, T, K) -> (N, H, T, Dh)."""
    n, t, k = a.shape
    return a.reshape(n, t, n_heads, k // n_heads).transpose(0, 2, 1, 3)


def _merge_heads(a):
    """(N, H, T, Dh) -> (N, T, K)."""
    n, h, t, dh = a.shape
    return a.transpose(0, 2, 1, 3).reshape(n, t, h * dh)


class CausalSelfAttention(Module):
    """Causal multi-head self-attention over a token sequence.

    Args:
        features: K, the token width (a multiple of ``n_heads``).
        n_heads: H.
        dtype, rng: as for ``Linear`` (both projections start with
            PyTorch's uniform init).

    Shapes:
        x: (N, T, K) -> y: (N, T, K). ``step``: (N, 1, K) -> (N, 1, K).

    Caches:
        forward keeps q, k, v (N, H, T, Dh) and the attention weights
        P (N, H, T, T): the backward needs all four (dS from P; dq, dk,
        dv from k, q and P); recomputing P would cost the softmax again.
        The two Linear children keep their inputs.
        ``kv_cache`` (keys, values), each (N, H, t, Dh): the keys and values
        of the t tokens ``step`` has seen since ``reset_kv_cache``.
    """

    def __init__(self, features, n_heads, dtype=DEFAULT_DTYPE, *, rng):
        super().__init__()
        if features % n_heads:
            raise ValueError(
                f"CausalSelfAttention needs features divisible by n_heads; got features={features}, n_heads={n_heads}."
            )
        self.features, self.n_heads, self.head_dim = int(features), int(n_heads), int(features) // int(n_heads)
        self.qkv = self.add_child("qkv", Linear(features, 3 * features, dtype=dtype, rng=rng))
        self.out = self.add_child("out", Linear(features, features, dtype=dtype, rng=rng))
        self.kv_cache = None

    def _check(self, x, name):
        if x.ndim != 3 or x.shape[2] != self.features:
            raise ValueError(
                f"CausalSelfAttention({self.features}) expects {name} of shape (N, T, {self.features}); got {tuple(x.shape)}."
            )

    def _qkv(self, x):
        qkv = self.qkv.forward(x)  # (N, T, 3K)
        q, k, v = qkv[..., : self.features], qkv[..., self.features : 2 * self.features], qkv[..., 2 * self.features :]
        return tuple(_split_heads(a, self.n_heads) for a in (q, k, v))  # (N, H, T, Dh) each

    @staticmethod
    def _softmax(s):
        """Softmax along the last axis, in place on s (a fresh array of scores)."""
        xp = get_array_module(s)
        s -= s.max(axis=-1, keepdims=True)
        xp.exp(s, out=s)  # masked entries: exp(-inf) = 0
        s /= s.sum(axis=-1, keepdims=True)
        return s

    def forward(self, x):
        self._check(x, "x")
        xp = get_array_module(x)
        t = x.shape[1]
        q, k, v = self._qkv(x)  # (N, H, T, Dh)
        s = q @ k.transpose(0, 1, 3, 2)  # (N, H, T, T)
        s *= 1 / math.sqrt(self.head_dim)
        future = xp.triu(xp.ones((t, t), dtype=bool), k=1)  # (T, T), True where j > i
        s[:, :, future] = -xp.inf
        p = self._softmax(s)  # (N, H, T, T), zero above the diagonal
        o = p @ v  # (N, H, T, Dh)
        self._save_cache("forward", (q, k, v, p))
        return self.out.forward(_merge_heads(o))  # (N, T, K)

    def backward(self, dy):
        q, k, v, p = self._take_cache("forward", "backward")
        scale = 1 / math.sqrt(self.head_dim)
        # y = merge(O) W_o + b_o
        do = _split_heads(self.out.backward(dy), self.n_heads)  # (N, H, T, Dh)
        # O = P v
        dp = do @ v.transpose(0, 1, 3, 2)  # (N, H, T, T)
        dv = p.transpose(0, 1, 3, 2) @ do  # (N, H, T, Dh)
        # P = softmax(S): dS = P * (dP - sum_j dP * P), zero where masked (P = 0)
        dp -= (dp * p).sum(axis=-1, keepdims=True)
        ds = dp * p  # (N, H, T, T)
        # S = q k^T * scale
        dq = (ds @ k) * scale  # (N, H, T, Dh)
        dk = (ds.transpose(0, 1, 3, 2) @ q) * scale  # (N, H, T, Dh)
        # q, k, v = split(x W_qkv + b_qkv)
        xp = get_array_module(dy)
        dqkv = xp.concatenate([_merge_heads(dq), _merge_heads(dk), _merge_heads(dv)], axis=-1)  # (N, T, 3K)
        return self.qkv.backward(dqkv)  # (N, T, K)

    # -- sequential sampling ------------------------------------------------------

    def reset_kv_cache(self):
        """Forget the cached keys and values: the next ``step`` is position 0."""
        self.kv_cache = None

    def step(self, x_t):
        """Attend from one new token to itself and every token since ``reset_kv_cache``.

        Args:
            x_t: (N, 1, K), the token at the next position.

        Returns:
            (N, 1, K), equal to that position's row of ``forward`` on the
            whole sequence. No backward: the Linear caches are released.
        """
        self._check(x_t, "x_t")
        xp = get_array_module(x_t)
        q, k, v = self._qkv(x_t)  # (N, H, 1, Dh)
        if self.kv_cache is not None:
            k = xp.concatenate([self.kv_cache[0], k], axis=2)  # (N, H, t+1, Dh)
            v = xp.concatenate([self.kv_cache[1], v], axis=2)
        self.kv_cache = (k, v)
        s = (q @ k.transpose(0, 1, 3, 2)) / math.sqrt(self.head_dim)  # (N, H, 1, t+1), all in the past
        o = self._softmax(s) @ v  # (N, H, 1, Dh)
        y = self.out.forward(_merge_heads(o))  # (N, 1, K)
        self.release_caches()
        return y
