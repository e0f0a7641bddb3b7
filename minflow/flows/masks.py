"""Masks for vector couplings: which coordinates a coupling copies.

A mask is a boolean vector of length D: True marks a coordinate that is
copied unchanged and conditions the transformation (x_a), False one that is
transformed (x_b). RealNVP (Dinh et al. 2016, arXiv:1605.08803) alternates
masks between layers so that every coordinate is transformed.

Masks are built on the host with NumPy (they are fixed, small constants) and
moved to the array backend by the layer that uses them.
"""

import numpy

__all__ = ["check_mask", "half_mask", "parity_mask"]


def half_mask(features, first=True):
    """Copy the first half (``first=True``) or the second half of D coordinates."""
    mask = numpy.zeros(features, dtype=bool)
    half = features // 2
    if first:
        mask[:half] = True
    else:
        mask[half:] = True
    return check_mask(mask, features)


def parity_mask(features, parity=0):
    """Copy coordinates i with i % 2 == parity (0: even ones, 1: odd ones)."""
    if parity not in (0, 1):
        raise ValueError(f"parity must be 0 or 1; got {parity!r}.")
    return check_mask(numpy.arange(features) % 2 == parity, features)


def check_mask(mask, features=None):
    """Validate a user-given mask: 1-D, boolean-like, copies and transforms something."""
    mask = numpy.asarray(mask)
    if mask.ndim != 1:
        raise ValueError(f"A vector mask must be 1-D (D,); got shape {mask.shape}.")
    if mask.dtype != bool:
        if not numpy.all((mask == 0) | (mask == 1)):
            raise ValueError("A mask must hold only True/False (or 1/0) values.")
        mask = mask.astype(bool)
    if features is not None and mask.shape[0] != features:
        raise ValueError(f"Mask has length {mask.shape[0]} but the data has D={features} features.")
    if mask.all() or not mask.any():
        raise ValueError(
            "A mask must copy at least one coordinate (True) and transform at least one "
            f"(False); got {mask.astype(int).tolist()}."
        )
    return mask
