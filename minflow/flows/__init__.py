"""Invertible layers (bijections). Every one maps data x to latent z in ``forward``.

See ``flows.base`` for the layer contract.
"""

from .actnorm import ActNorm
from .additive_coupling import AdditiveCoupling
from .affine_coupling import AffineCoupling
from .base import Bijection, Inverse, RecomputeError
from .batch_norm import BatchNorm, set_training
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
from .squeeze import Squeeze, squeeze, unsqueeze
from .tarflow import TarFlowBlock

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "BatchNorm",
    "Bijection",
    "FactorOut",
    "Flow",
    "GlowStep",
    "ImageAffineCoupling",
    "Inverse",
    "InvertibleLinear",
    "InvertibleLinearLU",
    "Logit",
    "Patchify",
    "Permutation",
    "Planar",
    "PlanarInverseError",
    "Radial",
    "RecomputeError",
    "Reverse",
    "Squeeze",
    "TarFlowBlock",
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
