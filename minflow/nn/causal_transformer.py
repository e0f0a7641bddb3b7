"""CausalTransformer: a sequence-to-sequence network whose output t sees inputs 1..t only.

The conditioner of TarFlow (Zhai et al. 2025, arXiv:2412.06329, section 3.1),
GPT's shape (Radford et al. 2018) on continuous tokens:

    h = u W_in + b_in + P             (N, T, D) -> (N, T, K)   embedding, learned positions
    h = block_L(... block_1(h))       (N, T, K)                pre-norm causal Transformer blocks
    y = LN(h) W_out + b_out           (N, T, K) -> (N, T, D_out)

Every part works token by token except the attention, which is causal, so
y_t depends on u_1..u_t alone. ``step`` feeds one token at a time through the
blocks' key/value caches: T steps give the rows of one ``forward``.
"""

from ..backend import DEFAULT_DTYPE
from .layer_norm import LayerNorm
from .linear import Linear
from .module import Module
from .positional_embedding import PositionalEmbedding
from .transformer_block import TransformerBlock

__all__ = ["CausalTransformer"]


class CausalTransformer(Module):
    """Embedding, positions, ``depth`` causal Transformer blocks, a final LayerNorm and a projection.

    Args:
        in_features: D, the input token width.
        out_features: D_out, the output width per token.
        n_tokens: T, the longest sequence.
        hidden: K, the width inside.
        depth: number of Transformer blocks.
        n_heads: attention heads (divides K).
        mlp_ratio: MLP width as a multiple of K.
        out_init: init of the output projection ("zeros" starts a flow block
            as the identity; see ``Linear``).
        dtype, rng: parameter dtype and generator.

    Shapes:
        u: (N, T', D) with T' <= T -> y: (N, T', D_out). ``step``: (N, D) -> (N, D_out).

    Caches:
        none of its own; each part keeps what its backward needs. ``step``
        counts the position it is at (``position``) and its blocks hold the
        key/value caches.
    """

    def __init__(
        self,
        in_features,
        out_features,
        n_tokens,
        hidden=64,
        depth=2,
        n_heads=4,
        mlp_ratio=4,
        out_init="zeros",
        dtype=DEFAULT_DTYPE,
        *,
        rng,
    ):
        super().__init__()
        self.in_features, self.out_features, self.n_tokens = int(in_features), int(out_features), int(n_tokens)
        self.embed = self.add_child("embed", Linear(in_features, hidden, dtype=dtype, rng=rng))
        self.pos = self.add_child("pos", PositionalEmbedding(n_tokens, hidden, dtype=dtype, rng=rng))
        self.blocks = [
            self.add_child(f"block{i}", TransformerBlock(hidden, n_heads, mlp_ratio, dtype=dtype, rng=rng))
            for i in range(depth)
        ]
        self.norm = self.add_child("norm", LayerNorm(hidden, dtype=dtype))
        self.head = self.add_child("head", Linear(hidden, out_features, init=out_init, dtype=dtype, rng=rng))
        self.position = 0

    def forward(self, u):
        h = self.pos.forward(self.embed.forward(u))  # (N, T, K)
        for block in self.blocks:
            h = block.forward(h)  # (N, T, K)
        return self.head.forward(self.norm.forward(h))  # (N, T, D_out)

    def backward(self, dy):
        dh = self.norm.backward(self.head.backward(dy))  # (N, T, K)
        for block in reversed(self.blocks):
            dh = block.backward(dh)  # (N, T, K)
        return self.embed.backward(self.pos.backward(dh))  # (N, T, D)

    def reset_kv_cache(self):
        """Start a new sequence: the next ``step`` is position 0."""
        self.position = 0
        for block in self.blocks:
            block.reset_kv_cache()

    def step(self, u_t):
        """The next input token, (N, D) -> its output row (N, D_out), through the key/value caches.

        No backward (sampling only); equal to row ``position`` of ``forward``
        on the whole sequence.
        """
        if self.position >= self.n_tokens:
            raise RuntimeError(
                f"CausalTransformer.step past its {self.n_tokens} positions; call reset_kv_cache() first."
            )
        h = self.pos.forward_at(self.embed.forward(u_t[:, None, :]), self.position)  # (N, 1, K)
        for block in self.blocks:
            h = block.step(h)  # (N, 1, K)
        y = self.head.forward(self.norm.forward(h))[:, 0]  # (N, D_out)
        self.release_caches()
        self.position += 1
        return y
