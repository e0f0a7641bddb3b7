"""Fixed permutations of features (or channels): a shuffle and a reversal.

Direction: forward maps data x to latent z. Along axis 1 (features of
(N, D), channels of (N, C, H, W)):

    forward:  z = x[:, perm]        inverse:  x = z[:, inv_perm]
    log|det| = 0                    (a permutation matrix has det +-1)

RealNVP alternates masks; NICE and Glow's baseline permute between couplings
instead (Kingma & Dhariwal 2018, arXiv:1807.03039, section 3.2).
"""

import numpy

from ..backend import get_array_module, get_backend, to_device
from .base import Bijection

__all__ = ["Permutation", "Reverse", "random_permutation"]


def random_permutation(features, seed=0):
    """A fixed random permutation of range(features), reproducible from ``seed`` (host array)."""
    return numpy.random.default_rng(seed).permutation(features)


class Permutation(Bijection):
    """Reorder axis 1 by a fixed permutation; no parameters, log-det 0.

    Args:
        perm: a permutation of range(D) (list or array).

    Shapes:
        x, z: (N, D, ...), permuted along axis 1; logdet: (N,) zeros.

    Caches:
        nothing: the backward of a permutation is the inverse permutation.
    """

    stateless = True

    def __init__(self, perm):
        super().__init__()
        perm = numpy.asarray(perm)
        if perm.ndim != 1 or not numpy.array_equal(numpy.sort(perm), numpy.arange(perm.size)):
            raise ValueError(f"perm must be a permutation of range(D); got {perm.tolist()}.")
        self.features = perm.size
        xp = get_backend()
        self.perm = to_device(perm, xp)
        self.inv_perm = to_device(numpy.argsort(perm), xp)

    def _move_fixed_arrays(self, xp):
        self.perm = to_device(self.perm, xp)
        self.inv_perm = to_device(self.inv_perm, xp)

    def _permute(self, x, index, name):
        if x.ndim < 2 or x.shape[1] != self.features:
            raise ValueError(
                f"{type(self).__name__} of size {self.features} expects {name} of shape (N, {self.features}, ...); "
                f"got {tuple(x.shape)}."
            )
        return x[:, index]

    def forward(self, x):
        return self._permute(x, self.perm, "x"), self._zero_logdet(x)

    def inverse(self, z):
        return self._permute(z, self.inv_perm, "z"), self._zero_logdet(z)

    def backward(self, dz, dlogdet):
        # z = x[:, perm]  =>  dx[:, perm] = dz  =>  dx = dz[:, inv_perm]
        return dz[:, self.inv_perm]

    def inverse_backward(self, dx, dlogdet):
        # x = z[:, inv_perm]  =>  dz = dx[:, perm]
        return dx[:, self.perm]

    @staticmethod
    def _zero_logdet(x):
        return get_array_module(x).zeros(x.shape[0], dtype=x.dtype)


class Reverse(Permutation):
    """Reverse the order of axis 1 (features or channels): perm = D-1, ..., 0."""

    def __init__(self, features):
        super().__init__(numpy.arange(features)[::-1].copy())
