"""Patchify and unpatchify: images (N, C, H, W) <-> token sequences (N, T, C p p).

A Vision-Transformer-style reading of an image (Dosovitskiy et al. 2020,
arXiv:2010.11929): cut it into p x p patches, read the patches row by row
(T = (H/p)(W/p) tokens), and flatten each patch in the order (channel, row,
column) into one token of C p^2 values. Both maps only move entries, so each
is the other's inverse and the other's backward (the transpose of a
permutation is its inverse).

    tokens[n, i (W/p) + j, c p^2 + a p + b] = x[n, c, i p + a, j p + b]
"""

__all__ = ["patchify", "unpatchify"]


def patchify(x, p):
    """Images (N, C, H, W) -> tokens (N, T, C p p), T = (H/p)(W/p), patches row by row."""
    if x.ndim != 4 or x.shape[2] % p or x.shape[3] % p:
        raise ValueError(
            f"patchify expects images (N, C, H, W) with H and W multiples of the patch size {p}; got {tuple(x.shape)}."
        )
    n, c, height, width = x.shape
    x = x.reshape(n, c, height // p, p, width // p, p)  # (N, C, H/p, p, W/p, p)
    x = x.transpose(0, 2, 4, 1, 3, 5)  # (N, H/p, W/p, C, p, p)
    return x.reshape(n, (height // p) * (width // p), c * p * p)  # (N, T, C p p)


def unpatchify(tokens, p, image_shape):
    """Tokens (N, T, C p p) -> images (N, C, H, W), the inverse of ``patchify``.

    Args:
        tokens: (N, T, C p p).
        p: patch side.
        image_shape: (C, H, W) of one image.
    """
    c, height, width = image_shape
    expected = ((height // p) * (width // p), c * p * p)
    if tokens.ndim != 3 or tuple(tokens.shape[1:]) != expected:
        raise ValueError(
            f"unpatchify to images {tuple(image_shape)} with {p}x{p} patches expects tokens (N, {expected[0]}, "
            f"{expected[1]}); got {tuple(tokens.shape)}."
        )
    n = tokens.shape[0]
    x = tokens.reshape(n, height // p, width // p, c, p, p)  # (N, H/p, W/p, C, p, p)
    x = x.transpose(0, 3, 1, 4, 2, 5)  # (N, C, H/p, p, W/p, p)
    return x.reshape(n, c, height, width)  # (N, C, H, W)
