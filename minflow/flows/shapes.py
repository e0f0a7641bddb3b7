"""Input shapes of the layers: vectors (N, D), and per-channel parameters on (N, C) or (N, C, H, W).

A layer checks its input at the start of each pass, so a wrong shape is a
clear error naming the layer and how to fix it, not a broadcasting surprise
further in. Per-channel layers (ActNorm, BatchNorm) hold one number per
channel, shape (C,), broadcast over the batch and any spatial axes.
"""

__all__ = ["channel_axes", "check_channels", "check_vectors", "per_channel"]


def check_vectors(x, name, features, owner, fix):
    """ValueError unless ``x`` is (N, features); the message names ``owner`` and says how to ``fix`` it."""
    if x.ndim != 2 or x.shape[1] != features:
        raise ValueError(f"{owner} expects {name} of shape (N, {features}); got {tuple(x.shape)}. {fix}")


def check_channels(x, name, channels, owner, fix):
    """ValueError unless ``x`` is (N, channels) or (N, channels, H, W); the message names ``owner`` and ``fix``."""
    if x.ndim < 2 or x.shape[1] != channels:
        raise ValueError(
            f"{owner} expects {name} of shape (N, {channels}) or (N, {channels}, H, W); got {tuple(x.shape)}. {fix}"
        )


def per_channel(p, x):
    """A (C,) array reshaped to broadcast against x: (1, C, 1, ..., 1)."""
    return p.reshape((1, p.shape[0]) + (1,) * (x.ndim - 2))


def channel_axes(x):
    """Every axis of x but the channels (axis 1): the axes a per-channel statistic sums over."""
    return (0,) + tuple(range(2, x.ndim))
