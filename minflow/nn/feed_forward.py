"""FeedForward: the Transformer's MLP block, applied to every token on its own.

Vaswani et al. (2017), arXiv:1706.03762, section 3.3 ("position-wise
feed-forward network"), with GELU as in GPT-2 and ViT:

    h = GELU(x W_1 + b_1)      (N, T, K) -> (N, T, m K)
    y = h W_2 + b_2            (N, T, m K) -> (N, T, K)

Its backward is that of its three parts, last first.
"""

from ..backend import DEFAULT_DTYPE
from .gelu import GELU
from .linear import Linear
from .module import Module

__all__ = ["FeedForward"]


class FeedForward(Module):
    """Linear K -> m K, GELU, Linear m K -> K, token by token.

    Args:
        features: K.
        ratio: m, the hidden width as a multiple of K (4 in the Transformer).
        dtype, rng: as for ``Linear``.

    Shapes:
        x: (N, T, K) -> y: (N, T, K) (any (..., K) works: tokens never mix).

    Caches:
        none of its own: each Linear keeps its input, GELU its input and tanh.
    """

    def __init__(self, features, ratio=4, dtype=DEFAULT_DTYPE, *, rng):
        super().__init__()
        hidden = int(ratio * features)
        self.fc1 = self.add_child("fc1", Linear(features, hidden, dtype=dtype, rng=rng))
        self.act = self.add_child("act", GELU())
        self.fc2 = self.add_child("fc2", Linear(hidden, features, dtype=dtype, rng=rng))

    def forward(self, x):
        h = self.act.forward(self.fc1.forward(x))  # (N, T, m K)
        return self.fc2.forward(h)  # (N, T, K)

    def backward(self, dy):
        dh = self.fc2.backward(dy)  # (N, T, m K)
        return self.fc1.backward(self.act.backward(dh))  # (N, T, K)
