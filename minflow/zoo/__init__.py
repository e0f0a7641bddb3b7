"""Ready-made reference models of docs/reference-problems.md (R2, P2, D8, ...)."""

from .d8 import d8, evaluate_bpd
from .glow import glow_2d, glow_digits
from .p2 import fit_reverse_kl, planar_2d, radial_2d
from .r2 import realnvp_2d
from .spline_2d import iaf_2d, maf_2d, nsf_2d, nsf_ar_2d
from .tarflow import TARFLOW_PARAMETERS, tarflow_digits

__all__ = [
    "TARFLOW_PARAMETERS",
    "d8",
    "evaluate_bpd",
    "fit_reverse_kl",
    "glow_2d",
    "glow_digits",
    "iaf_2d",
    "maf_2d",
    "nsf_2d",
    "nsf_ar_2d",
    "planar_2d",
    "radial_2d",
    "realnvp_2d",
    "tarflow_digits",
]
