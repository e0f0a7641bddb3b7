"""Splits: the mask object of a coupling, which decides what is copied and what is transformed.

A coupling (``flows.coupling``) copies part of its input, x_a, feeds it to a
conditioner, and transforms the rest, x_b, with an elementwise transformer.
A split knows how to take x apart and put it back together, and the
gradients of both:

    FeatureSplit(mask)        mask bool (F,) on axis 1: features of vectors (N, D)
                              or channels of images (N, C, H, W);
                              x_a = x[:, copied], x_b = x[:, transformed]
    CheckerboardSplit(mask)   mask bool (H, W) on every channel of (N, C, H, W):
                              x_a = x * copied (the conditioner sees the whole
                              image with the transformed pixels zeroed),
                              x_b = x (transformed, then the copied pixels are
                              put back), log-det counted on the transformed pixels only

True in a mask marks a copied entry (``flows.masks``, ``flows.image_masks``).
"""

from ..backend import get_array_module, to_device
from .image_masks import check_image_mask
from .masks import check_mask

__all__ = ["CheckerboardSplit", "FeatureSplit", "make_split"]


class FeatureSplit:
    """Copy the entries of axis 1 where mask is True, transform the others.

    Args:
        mask: bool (F,), True = copied; F features (vectors) or channels (images).
        xp: array module of the index arrays.

    Shapes:
        x: (N, F, ...) -> x_a: (N, Fa, ...), x_b: (N, Fb, ...).
    """

    def __init__(self, mask, xp):
        self.mask = check_mask(mask)
        self.n_features = self.mask.shape[0]
        self.n_copied = int(self.mask.sum())
        self.n_transformed = self.n_features - self.n_copied
        self.to(xp)

    def to(self, xp):
        self.idx_a = to_device(self.mask.nonzero()[0], xp)  # copied, (Fa,)
        self.idx_b = to_device((~self.mask).nonzero()[0], xp)  # transformed, (Fb,)

    def split(self, x):
        """(x_a, x_b): the conditioner's input and the transformer's."""
        return x[:, self.idx_a], x[:, self.idx_b]

    def merge(self, a, b):
        """The full (N, F, ...) array from the copied part a and the transformed part b."""
        out = get_array_module(a).empty((a.shape[0], self.n_features, *a.shape[2:]), dtype=a.dtype)
        out[:, self.idx_a] = a
        out[:, self.idx_b] = b
        return out

    def merge_backward(self, dout):
        """(d a, d b) from d merge(a, b)."""
        return self.split(dout)

    def split_backward(self, da, db):
        """dx from the gradients of x_a and x_b."""
        return self.merge(da, db)

    def sum_logdet(self, logdet):
        """(N,) log-det from the transformer's per-entry log-det (N, Fb, ...)."""
        return logdet.sum(axis=tuple(range(1, logdet.ndim)))

    def spread_dlogdet(self, dlogdet, ndim):
        """(N,) dL/dlogdet as an array that broadcasts against the per-entry log-det."""
        return dlogdet.reshape((-1,) + (1,) * (ndim - 1))  # (N, 1, ...)


class CheckerboardSplit:
    """Copy the pixels where the (H, W) mask is True, in every channel; transform the others.

    Args:
        mask: bool (H, W), True = copied (``checkerboard_mask``).
        xp: array module of the masks.

    Shapes:
        x: (N, C, H, W) -> x_a, x_b: (N, C, H, W) each (x_a zero on the
        transformed pixels; x_b is all of x, its copied pixels restored by ``merge``).
    """

    def __init__(self, mask, xp):
        self.mask = check_image_mask(mask)
        if self.mask.ndim != 2:
            raise ValueError(f"CheckerboardSplit needs a spatial mask (H, W); got shape {self.mask.shape}.")
        self.to(xp)

    def to(self, xp):
        self.copied = to_device(self.mask[None, None], xp)  # (1, 1, H, W) bool
        self.free = ~self.copied  # transformed pixels

    def split(self, x):
        return x * self.copied, x

    def merge(self, a, b):
        return get_array_module(a).where(self.copied, a, b)  # a holds x on the copied pixels

    def merge_backward(self, dout):
        return dout * self.copied, dout * self.free

    def split_backward(self, da, db):
        # x_a = x * copied, x_b = x
        return db + da * self.copied

    def sum_logdet(self, logdet):
        return (logdet * self.free).sum(axis=(1, 2, 3))  # the copied pixels are not transformed

    def spread_dlogdet(self, dlogdet, ndim):
        return dlogdet[:, None, None, None] * self.free  # (N, 1, H, W)


def make_split(mask, xp):
    """A FeatureSplit for a 1-D mask, a CheckerboardSplit for a 2-D (H, W) one."""
    return CheckerboardSplit(mask, xp) if getattr(mask, "ndim", 1) == 2 else FeatureSplit(mask, xp)
