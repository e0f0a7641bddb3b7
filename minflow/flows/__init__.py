"""Invertible layers (bijections). Every one maps data x to latent z in ``forward``.

See ``flows.base`` for the layer contract.
"""

from .actnorm import ActNorm
from .additive_coupling import AdditiveCoupling
from .affine_coupling import AffineCoupling
from .autoregressive import IAF, MaskedAutoregressive
from .base import Bijection, Inverse, RecomputeError
from .batch_norm import BatchNorm, set_training
from .coupling import Coupling
from .factor_out import FactorOut
from .flow import Flow
from .glow_step import GlowStep
from .image_coupling import ImageAffineCoupling
from .image_masks import channel_mask, check_image_mask, checkerboard_mask
from .invertible_linear import InvertibleLinear, InvertibleLinearLU
from .masks import check_mask, half_mask, parity_mask
from .patchify import Patchify
from .permutation import Permutation, Reverse, random_permutation
from .planar import Planar, PlanarInverseError
from .preprocessing import Logit, dequantize
from .radial import Radial
from .splits import CheckerboardSplit, FeatureSplit
from .squeeze import Squeeze, squeeze, unsqueeze
from .tarflow import TarFlowBlock
from .transformers import Additive, Affine, RationalQuadraticSpline, Transformer

__all__ = [
    "IAF",
    "ActNorm",
    "Additive",
    "AdditiveCoupling",
    "Affine",
    "AffineCoupling",
    "BatchNorm",
    "Bijection",
    "CheckerboardSplit",
    "Coupling",
    "FactorOut",
    "FeatureSplit",
    "Flow",
    "GlowStep",
    "ImageAffineCoupling",
    "Inverse",
    "InvertibleLinear",
    "InvertibleLinearLU",
    "Logit",
    "MaskedAutoregressive",
    "Patchify",
    "Permutation",
    "Planar",
    "PlanarInverseError",
    "Radial",
    "RationalQuadraticSpline",
    "RecomputeError",
    "Reverse",
    "Squeeze",
    "TarFlowBlock",
    "Transformer",
    "channel_mask",
    "check_image_mask",
    "check_mask",
    "checkerboard_mask",
    "dequantize",
    "half_mask",
    "parity_mask",
    "random_permutation",
    "set_training",
    "squeeze",
    "unsqueeze",
]
