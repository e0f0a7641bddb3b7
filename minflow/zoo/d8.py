"""D8: the reference multi-scale RealNVP for the 8x8 digits (docs/reference-problems.md, section 3).

The model maps dequantised pixels v in [0, 1)^(1x8x8) to one latent tensor
(4, 4, 4) over N(0, I), with the logit transform as its FIRST layer, so
``model.log_prob(v)`` is log q(v) through the preprocessing and

    bpd = -(log q(v) - 64 ln 17) / (64 ln 2) = model.bits_per_dim(model.log_prob(v), 17)

Layers (forward = data -> latent), Dinh et al. (2016), arXiv:1605.08803:

    Logit(a = 0.05)                                 1x8x8
    3 checkerboard couplings, parities 0, 1, 0      1x8x8, conditioner 1 -> 2 channels
    Squeeze                                         -> 4x4x4
    3 channel couplings, copying 0:2, 2:4, 0:2      conditioner 2 -> 4 channels
    FactorOut(keep 2): channels 2:4 to the base;    on 2x4x4:
        4 checkerboard couplings, parities 0, 1, 0, 1   conditioner 2 -> 4 channels

Each coupling: s = tanh(s_raw); conditioner a ResNet (3x3 conv in -> 32,
2 residual blocks, ReLU, 3x3 conv out initialised to zero). 384,962 parameters.

``d8(transformer="spline")`` keeps this architecture with rational-quadratic
spline couplings (Durkan et al. 2019, arXiv:1906.04032; K = 8 bins on
[-4, 4], identity outside): the conditioners return 3K - 1 = 23 raw
parameters per transformed entry instead of 2.
"""

import math

import numpy

from ..backend import DEFAULT_DTYPE, make_rng, to_device, to_numpy
from ..distributions import StandardNormal
from ..flows.coupling import Coupling
from ..flows.factor_out import FactorOut
from ..flows.flow import Flow
from ..flows.image_coupling import ImageAffineCoupling
from ..flows.image_masks import channel_mask, checkerboard_mask
from ..flows.preprocessing import Logit, dequantize
from ..flows.squeeze import Squeeze
from ..flows.transformers import RationalQuadraticSpline
from ..metrics import bits_per_dim
from ..model import FlowModel
from ..nn.conv2d import Conv2d

__all__ = ["D8_ALPHA", "D8_N_LEVELS", "D8_PARAMETERS", "D8_TRANSFORMERS", "d8", "evaluate_bpd"]

D8_PARAMETERS = 384_962
D8_N_LEVELS = 17
D8_ALPHA = 0.05
D8_TRANSFORMERS = ("affine", "spline")
D8_SPLINE_BINS, D8_SPLINE_BOUND = 8, 4.0
FIRST_SCALES_GATHER_FRACTION = 1.0  # the whole batch per im2col slice (up to MAX_GATHER_ROWS), before the factor-out


def d8(
    size=8,
    hidden=32,
    n_blocks=2,
    alpha=D8_ALPHA,
    learnable_scale=False,
    transformer="affine",
    dtype=DEFAULT_DTYPE,
    seed=0,
    rng=None,
):
    """The D8 model, or a smaller variant with the same structure.

    Args:
        size: image side (8 in D8; 4 gives a 1x4x4 variant whose 16x16
            Jacobian is cheap to build by brute force). Even, at least 4.
        hidden: conditioner width (32 in D8).
        n_blocks: residual blocks per conditioner (2 in D8).
        alpha: logit margin a (0.05 in D8).
        learnable_scale: s = scale * tanh(s_raw) with a learnable
            per-channel scale (off in D8; affine couplings only).
        transformer: "affine" (D8) or "spline" (rational-quadratic spline
            couplings, K = 8 bins on [-4, 4]).
        dtype: float32 to train, float64 to check gradients.
        seed / rng: every layer is drawn from one generator, ``rng`` if given, else ``make_rng(seed)``.

    Returns:
        FlowModel over v in [0, 1)^(1, size, size) (the Logit layer
        included), latent (4, size/2, size/2), base N(0, I).
    """
    if int(size) != size or size < 4 or size % 2:
        raise ValueError(f"d8 size must be an even integer >= 4 (8 for D8, 4 for a tiny variant); got {size!r}.")
    if transformer not in D8_TRANSFORMERS:
        raise ValueError(f"d8 transformer must be one of {D8_TRANSFORMERS}; got {transformer!r}.")
    if transformer == "spline" and learnable_scale:
        raise ValueError("learnable_scale bounds an affine coupling's log-scale; a spline has none. Drop it.")
    rng = rng if rng is not None else make_rng(seed)
    size, half = int(size), int(size) // 2

    def coupling(channels, mask):
        if transformer == "affine":
            return ImageAffineCoupling(
                channels, mask, hidden=hidden, n_blocks=n_blocks, learnable_scale=learnable_scale, dtype=dtype, rng=rng
            )
        spline = RationalQuadraticSpline(D8_SPLINE_BINS, D8_SPLINE_BOUND)
        return Coupling.for_images(channels, mask, spline, hidden=hidden, n_blocks=n_blocks, dtype=dtype, rng=rng)

    layers = [Logit(alpha)]
    layers += [coupling(1, checkerboard_mask(size, size, q)) for q in (0, 1, 0)]
    layers.append(Squeeze())
    layers += [coupling(4, channel_mask(4, first)) for first in (True, False, True)]
    inner = Flow([coupling(2, checkerboard_mask(half, half, q)) for q in (0, 1, 0, 1)])
    # A training step's activation memory peaks where the forward pass turns into the backward,
    # in the last scale (the couplings inside the factor-out), while every other layer still holds
    # its caches: those convolutions keep Conv2d's lean default slices. The earlier layers run with
    # fewer activations held, so they gather the whole batch at once (up to Conv2d's MAX_GATHER_ROWS
    # output pixels): fewer, larger matrix products, a faster step at the same peak (benchmarks/RESULTS.md).
    for layer in layers:
        for module in layer.modules():
            if isinstance(module, Conv2d):
                module.gather_fraction = FIRST_SCALES_GATHER_FRACTION
    layers.append(FactorOut(inner, keep=2))
    return FlowModel(Flow(layers), StandardNormal((4, half, half)), event_shape=(1, size, size))


def evaluate_bpd(model, images, n_levels=D8_N_LEVELS, n_draws=10, seed=0, batch_size=500):
    """Bits per dimension of integer images under a model of dequantised data.

    Each image is dequantised ``n_draws`` times with fixed noise (a host
    generator seeded with ``seed``, the same draws on NumPy and CuPy), and

        bpd    = mean over images and draws of -(log q(v) - D ln k) / (D ln 2)
        iw_bpd = the importance-weighted bound: per image, log of the mean
                 over draws of q(v), then the same conversion (lower by a
                 little; docs/reference-problems.md reports it beside bpd)

    Args:
        model: a FlowModel over v in [0, 1)^(C, H, W), e.g. ``d8()``.
        images: integer array (N, C, H, W), values 0 .. n_levels - 1 (host).
        n_levels: k (17 for the digits).
        n_draws, seed: the dequantisation draws (10 and fixed in D8).
        batch_size: images per forward pass.

    Returns:
        dict with "bpd" and "iw_bpd" (Python floats).
    """
    images = numpy.asarray(images)
    xp, dtype = model.xp, model.dtype
    rng = numpy.random.default_rng(seed)
    d = math.prod(images.shape[1:])
    log_q = numpy.empty((n_draws, len(images)))  # nats per image, on the host
    for draw in range(n_draws):
        v, _ = dequantize(images, n_levels, rng, dtype)  # (N, C, H, W) on the host
        for start in range(0, len(images), batch_size):
            batch = to_device(v[start : start + batch_size], xp)
            log_q[draw, start : start + len(batch)] = to_numpy(model.log_prob(batch))

    def to_bpd(lq):
        return float(bits_per_dim(lq, d, n_levels).mean())

    peak = log_q.max(axis=0)
    iw = peak + numpy.log(numpy.exp(log_q - peak).mean(axis=0))  # log mean_draws q(v), per image
    return {"bpd": to_bpd(log_q), "iw_bpd": to_bpd(iw)}
