"""Ready-made reference models of reference-problems.md (R2, P2, D8, ...)."""

from .r2 import realnvp_2d

__all__ = ["realnvp_2d"]
