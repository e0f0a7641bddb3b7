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

The code keeps the scores and weights transposed, S^T[j, i] (keys along
axis -2, queries along the last axis): NumPy takes the softmax's max across
the rows of each (T, T) block as a few vector passes, but along a short last
axis one row at a time, several times slower. Matrix products read the
transpose for free (``a.transpose(...) @ b`` is one BLAS call).

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


def _merged_matmul(a, b, n_heads):
    """merge(a @ b): (N, H, T, T') @ (N, H, T', Dh) -> (N, T, H Dh), written through a head view of the result.

    Matmul fills each head's (T, Dh) block of the (N, T, K) output in place:
    the same numbers as ``(a @ b).transpose(0, 2, 1, 3).reshape(N, T, K)``
    without that transposing copy.
    """
    xp = get_array_module(a)
    n, _, t, _ = a.shape
    out = xp.empty((n, t, n_heads * b.shape[-1]), dtype=a.dtype)  # (N, T, K)
    xp.matmul(a, b, out=_split_heads(out, n_heads))
    return out


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
        forward keeps q, k, v (N, H, T, Dh) and the attention weights,
        transposed, P^T (N, H, T, T): the backward needs all four (dS from
        P; dq, dk, dv from k, q and P); recomputing P would cost the
        softmax again.
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
    def _softmax_over_keys(st):
        """Softmax over the keys (axis -2) of transposed scores S^T (..., keys, queries), in place."""
        xp = get_array_module(st)
        st -= st.max(axis=-2, keepdims=True)
        xp.exp(st, out=st)  # masked entries: exp(-inf) = 0
        st /= xp.einsum("...ji->...i", st)[..., None, :]  # each query's sum over keys (einsum: one pass)
        return st

    def forward(self, x):
        self._check(x, "x")
        xp = get_array_module(x)
        t = x.shape[1]
        q, k, v = self._qkv(x)  # (N, H, T, Dh)
        st = k @ q.transpose(0, 1, 3, 2)  # S^T: (N, H, T, T), [key j, query i]
        st *= 1 / math.sqrt(self.head_dim)
        future = xp.tril(xp.full((t, t), -xp.inf, dtype=st.dtype), k=-1)  # (T, T), -inf where j > i, else 0
        st += future
        pt = self._softmax_over_keys(st)  # P^T: (N, H, T, T), zero where j > i
        o = _merged_matmul(pt.transpose(0, 1, 3, 2), v, self.n_heads)  # merge(O), O = P v: (N, T, K)
        self._save_cache("forward", (q, k, v, pt))
        return self.out.forward(o)  # (N, T, K)

    def backward(self, dy):
        q, k, v, pt = self._take_cache("forward", "backward")
        xp = get_array_module(dy)
        # y = merge(O) W_o + b_o
        do = _split_heads(self.out.backward(dy), self.n_heads)  # (N, H, T, Dh)
        # O = P v
        dpt = v @ do.transpose(0, 1, 3, 2)  # dP^T = v dO^T: (N, H, T, T)
        # dq, dk, dv are head views into one (N, T, 3K) array, which matmul fills in place: no concatenation
        dqkv = xp.empty((*dy.shape[:2], 3 * self.features), dtype=dy.dtype)  # (N, T, 3K)
        dq, dk, dv = (
            _split_heads(dqkv[..., i * self.features : (i + 1) * self.features], self.n_heads) for i in range(3)
        )
        xp.matmul(pt, do, out=dv)  # dv = P^T dO: (N, H, T, Dh)
        # P = softmax(S): dS = P * (dP - sum_j dP * P), zero where masked (P = 0)
        dpt -= xp.einsum("...ji,...ji->...i", dpt, pt)[..., None, :]
        dst = dpt * pt  # dS^T: (N, H, T, T)
        # S = q k^T * scale: dq = dS k * scale, dk = dS^T q * scale
        dst *= 1 / math.sqrt(self.head_dim)
        xp.matmul(dst.transpose(0, 1, 3, 2), k, out=dq)  # (N, H, T, Dh)
        xp.matmul(dst, q, out=dk)  # (N, H, T, Dh)
        # q, k, v = split(x W_qkv + b_qkv)
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
        st = (k @ q.transpose(0, 1, 3, 2)) / math.sqrt(self.head_dim)  # S^T: (N, H, t+1, 1), all in the past
        o = _merged_matmul(self._softmax_over_keys(st).transpose(0, 1, 3, 2), v, self.n_heads)  # (N, 1, K)
        y = self.out.forward(o)  # (N, 1, K)
        self.release_caches()
        return y
