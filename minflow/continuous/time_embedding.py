"""Sinusoidal features of the time t in [0, 1], the input a velocity field reads t from.

    phi(t) = [sin(w_0 t), cos(w_0 t), ..., sin(w_{F-1} t), cos(w_{F-1} t)],   w_k = pi * 2^k

A network fed t alone sees one number that barely moves its first layer;
features of several frequencies let it change quickly with t where the flow
needs it (near the data, t -> 1). The lowest frequency, pi, makes phi
one-to-one on [0, 1] (2 pi would give t = 0 and t = 1 the same features).
The features have no parameters, and they do not depend on the position x,
so they add nothing to the Jacobian dv/dx or to the divergence.
Same idea as the positional encoding of Vaswani et al. (2017, arXiv:1706.03762).
"""

import math

from ..backend import get_array_module

__all__ = ["time_features"]


def time_features(t, n_frequencies, x):
    """phi(t) for the batch x: (N, 2F), columns ordered [sin(w_0 t), cos(w_0 t), sin(w_1 t), ...].

    Args:
        t: a float (the same time for every row) or an (N,) array (one time per row).
        n_frequencies: F.
        x: the (N, D) positions; phi takes their array module, row count and dtype.
    """
    xp = get_array_module(x)
    n, dtype = x.shape[0], x.dtype
    t = xp.asarray(t, dtype=dtype)
    t = xp.broadcast_to(t.reshape(-1, 1), (n, 1))  # (n, 1)
    freqs = xp.asarray([math.pi * 2.0**k for k in range(n_frequencies)], dtype=dtype)  # (F,)
    angles = t * freqs  # (n, F)
    return xp.stack([xp.sin(angles), xp.cos(angles)], axis=2).reshape(n, 2 * n_frequencies)  # (n, 2F)
