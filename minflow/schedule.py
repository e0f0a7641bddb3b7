"""Learning-rate schedules: the factor an optimizer multiplies its ``lr`` by at step t.

An optimizer given ``schedule=`` takes step t (t = 1, 2, ..., counted by
``optimizer.t``, which checkpoints keep) with learning rate
``lr * schedule(t)``; ``lr`` is the peak. One schedule here:

    WarmupCosine(S, W, f):
        factor(t) = t / W                                              1 <= t <= W   (linear warmup)
        factor(t) = f + (1 - f) (1 + cos(pi (t - W) / (S - W))) / 2     W <  t <= S   (cosine decay)
        factor(t) = f                                                  t > S

Warmup keeps Adam's first steps small while its second-moment estimate is
still noisy; the cosine decay lets the weights settle at the end of the run
instead of rattling around the minimum at a constant step size. TarFlow is
trained so (Zhai et al. 2025, "Normalizing Flows are Capable Generative
Models", arXiv:2412.06329), as are most Transformers since Loshchilov &
Hutter (2017, SGDR, arXiv:1608.03983).
"""

import math

__all__ = ["WarmupCosine"]


class WarmupCosine:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``final`` at ``total_steps``.

    Args:
        total_steps: S, the steps of the whole run (epochs x steps per epoch).
        warmup_steps: W, 0 <= W < S (0: start at the peak).
        final: f, the factor at the end of the decay, in [0, 1] (0: decay to zero).
    """

    def __init__(self, total_steps, warmup_steps=0, final=0.0):
        if int(total_steps) != total_steps or total_steps < 1:
            raise ValueError(f"WarmupCosine total_steps must be a positive integer; got {total_steps!r}.")
        if int(warmup_steps) != warmup_steps or not 0 <= warmup_steps < total_steps:
            raise ValueError(
                f"WarmupCosine warmup_steps must be an integer in [0, total_steps={total_steps}); got {warmup_steps!r}."
            )
        if not 0.0 <= final <= 1.0:
            raise ValueError(f"WarmupCosine final must be a factor in [0, 1]; got {final!r}.")
        self.total_steps, self.warmup_steps, self.final = int(total_steps), int(warmup_steps), float(final)

    def __call__(self, t):
        """The factor of step t (1-based)."""
        s, w, f = self.total_steps, self.warmup_steps, self.final
        if t <= w:
            return t / w
        if t >= s:
            return f
        progress = (t - w) / (s - w)  # in (0, 1)
        return f + (1.0 - f) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def __repr__(self):
        return f"WarmupCosine(total_steps={self.total_steps}, warmup_steps={self.warmup_steps}, final={self.final})"
