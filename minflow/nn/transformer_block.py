"""A pre-norm Transformer block: attention and an MLP, each on a normalised copy, added back.

Pre-norm ordering as in GPT-2 (Radford et al. 2019) and Xiong et al.
(2020), "On Layer Normalization in the Transformer Architecture",
arXiv:2002.04745:

    h = x + Attention(LN_1(x))        (N, T, K)
    y = h + FeedForward(LN_2(h))      (N, T, K)

Backward: a residual sum passes its gradient to both branches unchanged,

    dh = dy + LN_2.backward(FeedForward.backward(dy))
    dx = dh + LN_1.backward(Attention.backward(dh))

With a causal attention, output token t depends on input tokens <= t only
(every other part works token by token), which is what ``step`` relies on.
"""

from ..backend import DEFAULT_DTYPE
from .attention import CausalSelfAttention
from .feed_forward import FeedForward
from .layer_norm import LayerNorm
from .module import Module

__all__ = ["TransformerBlock"]


class TransformerBlock(Module):
    """Pre-norm Transformer block with causal self-attention.

    Args:
        features: K, the token width.
        n_heads: attention heads (divides K).
        mlp_ratio: hidden width of the MLP as a multiple of K.
        dtype, rng: parameter dtype and generator.

    Shapes:
        x: (N, T, K) -> y: (N, T, K). ``step``: (N, 1, K) -> (N, 1, K).

    Caches:
        none of its own: each part keeps what its backward needs; the
        attention also holds the key/value cache of ``step``.
    """

    def __init__(self, features, n_heads, mlp_ratio=4, dtype=DEFAULT_DTYPE, *, rng):
        super().__init__()
        self.norm1 = self.add_child("norm1", LayerNorm(features, dtype=dtype))
        self.attn = self.add_child("attn", CausalSelfAttention(features, n_heads, dtype=dtype, rng=rng))
        self.norm2 = self.add_child("norm2", LayerNorm(features, dtype=dtype))
        self.mlp = self.add_child("mlp", FeedForward(features, mlp_ratio, dtype=dtype, rng=rng))

    # Each residual sum adds in place into the branch's result, a fresh array that no layer keeps.

    def forward(self, x):
        h = self.attn.forward(self.norm1.forward(x))
        h += x  # h = x + attn(norm1(x)): (N, T, K)
        y = self.mlp.forward(self.norm2.forward(h))
        y += h  # y = h + mlp(norm2(h)): (N, T, K)
        return y

    def backward(self, dy):
        # y = h + mlp(norm2(h)): the residual carries dy to h unchanged
        dh = self.norm2.backward(self.mlp.backward(dy))
        dh += dy  # (N, T, K)
        # h = x + attn(norm1(x))
        dx = self.norm1.backward(self.attn.backward(dh))
        dx += dh
        return dx  # (N, T, K)

    def reset_kv_cache(self):
        """Start a new sequence for ``step``."""
        self.attn.reset_kv_cache()

    def step(self, x_t):
        """The next token alone, (N, 1, K) -> (N, 1, K), attending to the cached past (no backward)."""
        h = x_t + self.attn.step(self.norm1.forward(x_t))  # (N, 1, K)
        y = h + self.mlp.forward(self.norm2.forward(h))  # (N, 1, K)
        self.release_caches()
        return y
