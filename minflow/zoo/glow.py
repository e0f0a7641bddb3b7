"""Glow-style models: a multi-scale Glow for the 8x8 digits, and Glow steps in 2D.

Kingma & Dhariwal (2018), "Glow: Generative Flow with Invertible 1x1
Convolutions", arXiv:1807.03039, sections 3-4. Forward = data -> latent.

``glow_digits``, over dequantised pixels v in [0, 1)^(1x8x8) as D8 (the
logit transform is its first layer, so ``model.bits_per_dim(model.log_prob(v),
17)`` is the D8 bits per dimension):

    Logit(a = 0.05)                                      1x8x8
    Squeeze                                              -> 4x4x4
    K steps: ActNorm, 1x1 conv (LU), coupling            on 4x4x4
    FactorOut(keep 2): channels 2:4 to the base; on 2x4x4:
        Squeeze                                          -> 8x2x2
        K steps                                          on 8x2x2
        Squeeze^-1                                       -> 2x4x4 (a fixed reordering of the latent)

Each coupling copies the first half of the channels (the mixing layer before
it decides which channels those are) and is an ``ImageAffineCoupling``
(s = tanh(s_raw)) or an ``ImageAdditiveCoupling``, with the D8 ResNet
conditioner. Differences from Glow, for a model of laptop size: the
conditioner is the D8 ResNet, the scale is exp(tanh) rather than
sigmoid(h + 2), and the factored-out channels go to N(0, I) rather than to a
learned conditional prior.

``glow_2d``: n Glow steps (ActNorm, LU mixing, affine coupling with the R2
conditioner, copying x[0]) over N(0, I2), the same depth as R2.
"""

from ..backend import DEFAULT_DTYPE, make_rng
from ..distributions import StandardNormal
from ..flows.base import Inverse
from ..flows.factor_out import FactorOut
from ..flows.flow import Flow
from ..flows.glow_step import MIXINGS, GlowStep
from ..flows.image_additive_coupling import ImageAdditiveCoupling
from ..flows.image_coupling import ImageAffineCoupling
from ..flows.image_masks import channel_mask
from ..flows.preprocessing import Logit
from ..flows.squeeze import Squeeze
from ..model import FlowModel
from .d8 import D8_ALPHA

__all__ = ["COUPLINGS", "MIXINGS", "glow_2d", "glow_digits"]

COUPLINGS = ("affine", "additive")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}.")


def glow_digits(
    steps=4,
    hidden=32,
    n_blocks=2,
    mixing="lu",
    coupling="affine",
    size=8,
    alpha=D8_ALPHA,
    dtype=DEFAULT_DTYPE,
    seed=0,
    rng=None,
):
    """A two-level Glow on 1 x size x size images (see the module docstring).

    Args:
        steps: K, Glow steps per level (an int), or (K1, K2) per level.
        hidden, n_blocks: the couplings' ResNet conditioner (D8: 32, 2).
        mixing: "lu" (Glow's 1x1 conv, LU form), "plain" (1x1 conv, plain W),
            "reverse" or "shuffle" (fixed channel permutations): the
            ablation of Glow's Figure 3.
        coupling: "affine" or "additive".
        size: image side, a multiple of 4 (8 for the digits; 4 gives a tiny
            1x4x4 model whose Jacobian is cheap to build by brute force).
        alpha: logit margin a (0.05 as in D8).
        dtype: float32 to train, float64 to check gradients.
        seed / rng: every layer is drawn from one generator, ``rng`` if given, else ``make_rng(seed)``.

    Returns:
        FlowModel over v in [0, 1)^(1, size, size), latent (4, size/2, size/2),
        base N(0, I).
    """
    _check_choice("mixing", mixing, MIXINGS)
    _check_choice("coupling", coupling, COUPLINGS)
    k1, k2 = (steps, steps) if isinstance(steps, int) else tuple(steps)
    for k in (k1, k2):
        if int(k) != k or k < 1:
            raise ValueError(f"steps must be positive integers (one per level); got {steps!r}.")
    if int(size) != size or size < 4 or size % 4:
        raise ValueError(
            f"glow_digits size must be a multiple of 4 (8 for the digits, 4 for a tiny model); got {size!r}."
        )
    rng = rng if rng is not None else make_rng(seed)
    size, half = int(size), int(size) // 2
    coupling_cls = ImageAffineCoupling if coupling == "affine" else ImageAdditiveCoupling

    def step(channels):
        layer = coupling_cls(channels, channel_mask(channels), hidden=hidden, n_blocks=n_blocks, dtype=dtype, rng=rng)
        return GlowStep(channels, layer, mixing=mixing, dtype=dtype, rng=rng)

    level2 = Flow([Squeeze(), *[step(8) for _ in range(int(k2))], Inverse(Squeeze())])  # 2xHxW -> 8xH/2xW/2 -> back
    layers = [Logit(alpha), Squeeze(), *[step(4) for _ in range(int(k1))], FactorOut(level2, keep=2)]
    return FlowModel(Flow(layers), StandardNormal((4, half, half)), event_shape=(1, size, size))


def glow_2d(n_steps=8, hidden=(64, 64), mixing="lu", coupling="affine", dtype=DEFAULT_DTYPE, seed=0, rng=None):
    """``n_steps`` Glow steps on 2D data over N(0, I2), for comparison with R2 at the same depth.

    Each step: ActNorm (data-dependent init on the first batch), a 2x2
    invertible linear map (``mixing``), and a coupling that copies x[0] and
    transforms x[1] with the R2 conditioner (MLP 1 -> 64 -> 64 -> 2, last
    layer zero, s = tanh(s_raw)).

    Args:
        n_steps: number of steps (8, the depth of R2).
        hidden: conditioner hidden widths.
        mixing: "lu", "plain", "reverse" or "shuffle".
        coupling: "affine" or "additive".
        dtype, seed / rng: as for ``realnvp_2d``.

    Returns:
        FlowModel with event shape (2,).
    """
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer; got {n_steps!r}.")
    _check_choice("coupling", coupling, COUPLINGS)
    rng = rng if rng is not None else make_rng(seed)
    steps = [
        GlowStep.for_vectors(2, hidden=hidden, coupling=coupling, mixing=mixing, dtype=dtype, rng=rng)
        for _ in range(int(n_steps))
    ]
    return FlowModel(Flow(steps), StandardNormal((2,)))
