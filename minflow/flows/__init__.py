"""Invertible layers (bijections). Every one maps data x to latent z in ``forward``.

See ``flows.base`` for the layer contract.
"""

from .additive_coupling import AdditiveCoupling
from .affine_coupling import AffineCoupling
from .base import Bijection, Inverse
from .flow import Flow
from .masks import check_mask, half_mask, parity_mask
from .permutation import Permutation, Reverse, random_permutation

__all__ = [
    "Bijection",
    "Inverse",
    "Flow",
    "AdditiveCoupling",
    "AffineCoupling",
    "half_mask",
    "parity_mask",
    "check_mask",
    "Permutation",
    "Reverse",
    "random_permutation",
]
