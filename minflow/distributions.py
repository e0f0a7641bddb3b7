"""Base distributions of flows.

The standard normal N(0, I) over an event of shape (D,) or (C, H, W):

    log p(z) = -0.5 * sum_i z_i^2 - (D / 2) * ln(2 pi)      (D = size of one event)
    score(z) = d log p / dz = -z
"""

import math

from .backend import DEFAULT_DTYPE, make_rng, normal

__all__ = ["StandardNormal"]

LOG_2PI = math.log(2 * math.pi)


class StandardNormal:
    """N(0, I) over events of ``event_shape``.

    Args:
        event_shape: shape of one sample, e.g. (2,) or (4, 4, 4).

    Shapes:
        z: (N, *event_shape) -> log_prob: (N,).
    """

    def __init__(self, event_shape):
        self.event_shape = tuple(int(s) for s in event_shape)
        self.dim = math.prod(self.event_shape)

    def log_prob(self, z):
        """log N(z; 0, I) per sample, shape (N,). Exact for any finite z (no exp)."""
        sq = (z * z).reshape(z.shape[0], -1).sum(axis=1)  # (N,)
        return -0.5 * sq - 0.5 * self.dim * LOG_2PI

    def score(self, z):
        """d log p(z) / dz = -z, shape of z."""
        return -z

    def sample(self, n, rng=None, dtype=DEFAULT_DTYPE, temperature=1.0):
        """n samples of N(0, temperature^2 I), shape (n, *event_shape)."""
        rng = rng if rng is not None else make_rng(None)
        return normal((n, *self.event_shape), dtype, rng, scale=temperature)
