"""Preprocessing of discrete images, with its log-determinant: dequantisation and the logit transform.

Uniform dequantisation (Theis, van den Oord & Bethge 2016, arXiv:1511.01844)
turns integer pixels x in {0, ..., k-1} into continuous v in [0, 1):

    v = (x + u) / k,   u ~ U[0, 1)^D,   log|det dv/d(x + u)| = -D ln k

so that a density q(v) bounds the discrete likelihood:
log P(x) >= E_u[log q(v)] - D ln k. The noise draw is data preparation
(``dequantize``, given an rng), not a layer.

The logit transform (Dinh, Sohl-Dickstein & Bengio 2016, arXiv:1605.08803,
section 4.1; here in the symmetric form of docs/reference-problems.md D8) maps
[0, 1] to the real line, away from the edges where a density would blow up.
Direction: forward maps v (data) to y (towards the latent):

    forward:  p = a + (1 - 2a) v,   y = log p - log(1 - p)
    inverse:  v = (sigmoid(y) - a) / (1 - 2a)
    log|det dy/dv| = sum_i [ln(1 - 2a) - ln p_i - ln(1 - p_i)]
"""

import math

from ..backend import DEFAULT_DTYPE, get_array_module, log_sigmoid, sigmoid, to_device, uniform
from .base import Bijection, RecomputeError

__all__ = ["Logit", "dequantize"]


def dequantize(x, n_levels, rng, dtype=DEFAULT_DTYPE):
    """Uniform dequantisation v = (x + u) / k, u ~ U[0, 1), and its log-det -D ln k.

    Args:
        x: integer array (N, ...) with values 0 .. n_levels - 1.
        n_levels: k, the number of intensity levels (17 for the 8x8 digits).
        rng: random generator for u (``backend.make_rng``); the caller owns
            it, so a seeded rng gives fixed draws (e.g. for evaluation).
        dtype: float dtype of v.

    Returns:
        v: (N, ...) in [0, 1); logdet: (N,) constant -D ln k, with D the
        size of one sample: log q(x + u) = log q(v) + logdet.
    """
    xp = get_array_module(x)
    if x.dtype.kind not in "iu":
        raise TypeError(
            f"dequantize expects integer pixels (0 .. {n_levels - 1}); got dtype {x.dtype}. "
            "Pass the raw images, e.g. load_digits('train')."
        )
    lo, hi = (int(v) for v in xp.stack([x.min(), x.max()])) if x.size else (0, 0)  # one read-back
    if lo < 0 or hi >= n_levels:
        raise ValueError(
            f"dequantize expects pixels in 0 .. {n_levels - 1} (n_levels = {n_levels}); got values from {lo} to {hi}. "
            "Pass the right n_levels (17 for the 8x8 digits, 256 for MNIST)."
        )
    u = to_device(uniform(x.shape, 0.0, 1.0, dtype, rng), xp)  # (N, ...), drawn where rng lives, moved to x's
    v = (x.astype(dtype) + u) / n_levels  # (N, ...) in [0, 1)
    d = math.prod(x.shape[1:])
    return v, xp.full(x.shape[0], -d * math.log(n_levels), dtype=v.dtype)


class Logit(Bijection):
    """y = logit(a + (1 - 2a) v): data in [0, 1] to the real line, with its log-det.

    Args:
        alpha: a in [0, 0.5), the margin kept from 0 and 1 (0.05 in D8).

    Shapes:
        v, y: (N, ...) any event shape; logdet: (N,).

    Caches:
        forward keeps p = a + (1 - 2a) v, inverse keeps sigmoid(y): each
        backward needs it (dy/dv = (1 - 2a) / (p (1 - p))), and it costs one
        array to keep against a log and a division to recompute.

    Reference:
        Dinh et al. (2016), "Density estimation using Real NVP", section 4.1.

    Note:
        v must lie in [0, 1] (dequantised pixels do); outside, p leaves
        (0, 1) and the logit is NaN. Samples mapped back by ``inverse`` lie
        in (-a / (1 - 2a), (1 - a) / (1 - 2a)): clip them to [0, 1] to show them.

        Memory by inversion rebuilds the input y of an inverse pass from its
        output v as logit(a + (1 - 2a) v). Rounding v leaves y known to
        about eps / min(q, 1 - q), q = sigmoid(y): to rounding for moderate
        y, but not at all where the sigmoid saturates. So ``rebuild_input``
        after an inverse pass checks (one boolean read back) that every q
        lies at least ``REBUILD_MARGIN`` (1e-8, |y| < 18.4) inside (0, 1) and
        raises ``RecomputeError`` otherwise, rather than return a wrong
        gradient (in float64 the gradients then agree with the cached path's
        to about 1e-11; at |y| = 30 only to 1e-8). After a forward pass (maximum likelihood) the rebuild,
        sigmoid of y, is always accurate.
    """

    stateless = True
    REBUILD_MARGIN = 1e-8  # after an inverse pass, sigmoid(y) this far inside (0, 1): see the Note

    def __init__(self, alpha=0.05):
        super().__init__()
        if not 0 <= alpha < 0.5:
            raise ValueError(f"Logit alpha must be in [0, 0.5); got {alpha!r}.")
        self.alpha = float(alpha)
        self._log_slope = math.log(1 - 2 * self.alpha)  # ln(1 - 2a)

    def _sum_per_sample(self, a):
        return a.reshape(a.shape[0], -1).sum(axis=1)  # (N,)

    def forward(self, v):
        xp = get_array_module(v)
        a = self.alpha
        p = a + (1 - 2 * a) * v  # in [a, 1 - a]
        log_p, log_1mp = xp.log(p), xp.log1p(-p)
        self._save_cache("forward", p)
        d = math.prod(v.shape[1:])
        return log_p - log_1mp, d * self._log_slope - self._sum_per_sample(log_p + log_1mp)

    def inverse(self, y):
        a = self.alpha
        q = sigmoid(y)
        self._save_cache("inverse", q)
        d = math.prod(y.shape[1:])
        # ln q + ln(1 - q) = log_sigmoid(y) + log_sigmoid(-y), stable for large |y|
        logdet = self._sum_per_sample(log_sigmoid(y) + log_sigmoid(-y)) - d * self._log_slope
        return (q - a) / (1 - 2 * a), logdet

    def backward(self, dy, dlogdet):
        p = self._take_cache("forward", "backward")
        extra = (1,) * (p.ndim - 1)
        # y = logit(p): dy/dv = (1 - 2a) / (p (1 - p));
        # logdet = const - sum [ln p + ln(1 - p)]: dlogdet/dv = (1 - 2a) (2p - 1) / (p (1 - p))
        return (1 - 2 * self.alpha) * (dy + dlogdet.reshape(-1, *extra) * (2 * p - 1)) / (p * (1 - p))

    def inverse_backward(self, dv, dlogdet):
        q = self._take_cache("inverse", "inverse_backward")
        extra = (1,) * (q.ndim - 1)
        # v = (sigmoid(y) - a) / (1 - 2a): dv/dy = q (1 - q) / (1 - 2a);
        # logdet = sum [ln q + ln(1 - q)] - const: dlogdet/dy = 1 - 2q
        return dv * q * (1 - q) / (1 - 2 * self.alpha) + dlogdet.reshape(-1, *extra) * (1 - 2 * q)

    def rebuild_input(self, x, direction):
        if direction == "inverse":  # x = v; its input y = logit(q), q = a + (1 - 2a) v
            q = self.alpha + (1 - 2 * self.alpha) * x
            n_saturated = int(((q < self.REBUILD_MARGIN) | (q > 1 - self.REBUILD_MARGIN)).sum())  # one read-back
            if n_saturated:
                raise RecomputeError(
                    f"Logit cannot rebuild its input after its inverse pass: {n_saturated} of {q.size} entries have "
                    f"|y| > {math.log((1 - self.REBUILD_MARGIN) / self.REBUILD_MARGIN):.1f}, where sigmoid(y) is within "
                    f"{self.REBUILD_MARGIN:g} of 0 or 1 and v no longer determines y to rounding, so memory by "
                    "inversion would give wrong gradients. Train through the inverse with recompute=None "
                    "(model.set_recompute(None)) for such samples."
                )
        return super().rebuild_input(x, direction)
