"""Elementwise monotone transformers: the part of a coupling or autoregressive layer that transforms.

See ``transformers.base`` for the contract (params of shape (N, P, *S), a
per-entry log-det, four passes, one cache policy).
"""

from .additive import Additive
from .affine import SCALES, Affine
from .base import Transformer
from .spline import RationalQuadraticSpline

__all__ = ["SCALES", "Additive", "Affine", "RationalQuadraticSpline", "Transformer"]
