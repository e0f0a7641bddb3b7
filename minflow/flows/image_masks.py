"""Masks for image couplings: which pixels or channels a coupling copies.

RealNVP (Dinh, Sohl-Dickstein & Bengio 2016, arXiv:1605.08803, section 3.4)
splits an image two ways, True marking what is copied (x_a) and conditions
the transformation of the rest (x_b):

    checkerboard, parity q:  pixel (i, j) copied if (i + j) % 2 == q      bool (H, W)
    channel-wise, first half: channels 0 .. C/2 - 1 copied                 bool (C,)

A spatial mask (H, W) applies to every channel; a channel mask (C,) to every
pixel. Couplings alternate parities or halves so that every entry is
transformed. Masks are small host constants (NumPy) that the layer using
them moves to its backend.
"""

import numpy

__all__ = ["channel_mask", "check_image_mask", "checkerboard_mask"]


def checkerboard_mask(height, width, parity=0):
    """bool (H, W): True (copied) where (i + j) % 2 == parity, parity 0 or 1."""
    if parity not in (0, 1):
        raise ValueError(f"Checkerboard parity must be 0 or 1; got {parity!r}.")
    i, j = numpy.indices((int(height), int(width)))
    return check_image_mask((i + j) % 2 == parity)


def channel_mask(channels, first=True):
    """bool (C,): True (copied) on the first half of the channels, or on the second half."""
    if int(channels) != channels or channels < 2 or channels % 2:
        raise ValueError(f"A channel mask splits an even number of channels (>= 2) in halves; got {channels!r}.")
    mask = numpy.arange(int(channels)) < channels // 2
    return check_image_mask(mask if first else ~mask)


def check_image_mask(mask):
    """Validate an image mask: bool (H, W) spatial or (C,) channel-wise, copying and transforming something."""
    mask = numpy.asarray(mask)
    if mask.ndim not in (1, 2):
        raise ValueError(
            f"An image mask is spatial (H, W) or channel-wise (C,); got shape {mask.shape}. "
            "Build one with checkerboard_mask(H, W, parity) or channel_mask(C, first)."
        )
    if mask.dtype != bool:
        if not numpy.all((mask == 0) | (mask == 1)):
            raise ValueError("An image mask must hold only True/False (or 1/0) values.")
        mask = mask.astype(bool)
    if mask.all() or not mask.any():
        raise ValueError(
            f"An image mask must copy some entries (True) and transform others (False); got shape {mask.shape} "
            f"with {int(mask.sum())} of {mask.size} copied."
        )
    return mask
