"""Autoregressive and spline flows for the 2D toys and the energy targets, each at most R2's size (40,000 parameters).

    maf_2d      20 MAF layers (MADE 2 -> 40 -> 40 -> 4, affine transformer
                s = tanh(s_raw)), orders natural and reversed in turn       38,480 parameters
    nsf_ar_2d   5 MAF layers with the rational-quadratic spline (K = 8 bins
                on [-5, 5], MADE 2 -> 64 -> 64 -> 46), orders in turn       36,710 parameters
    nsf_2d      6 spline couplings (layer k copies x[k % 2]; MLP
                1 -> 64 -> 64 -> 23, last layer zero; K = 8 on [-5, 5])     34,698 parameters
    iaf_2d      2 IAF layers with the spline (K = 8 on [-5, 5], MADE
                2 -> 32 -> 32 -> 46), orders natural and reversed in turn,   5,340 parameters
                for reverse KL on the energies: sampling is one MADE pass
                per layer, and a step costs less than planar K=32's (README);
                the energy command trains it on [-IAF_BOUND, IAF_BOUND]

Papamakarios et al. (2017), arXiv:1705.07057 (MAF); Durkan et al. (2019),
arXiv:1906.04032 (neural spline flows: NSF-C is the coupling form, NSF-AR
the autoregressive one); Kingma et al. (2016), arXiv:1606.04934 (IAF). All
start as the identity (zero last layers; maf_2d's ``last_init`` can draw them
instead). Base N(0, I2); forward = data -> latent.

maf_2d(n_layers=8, hidden=(64, 64)) is the MAF of zuko 1.6's size (36,896
parameters; with scale="softclip", last_init="uniform" it is zuko's
``MAF(2, transforms=8)``). In 2D a MAF layer transforms one coordinate given
the other, and the thin rings want more layers rather than wider ones: by
R2's recipe the 20 narrower layers bring NLL - H on the rings from 0.427 to
0.228 and on the checkerboard from 0.169 to 0.117 (means of seeds 0-2;
README, "Autoregressive and spline flows"). ``maf_2d(n_layers=16,
hidden=(44, 44))`` is the 16-layer, 36,672-parameter MAF and loads its
checkpoints.
"""

import numpy

from ..backend import DEFAULT_DTYPE, make_rng
from ..distributions import StandardNormal
from ..flows.autoregressive import IAF, MaskedAutoregressive
from ..flows.coupling import Coupling
from ..flows.flow import Flow
from ..flows.transformers import Affine, RationalQuadraticSpline
from ..model import FlowModel

__all__ = ["IAF_BOUND", "SPLINE_BINS", "SPLINE_BOUND", "iaf_2d", "maf_2d", "nsf_2d", "nsf_ar_2d"]

SPLINE_BINS = 8
SPLINE_BOUND = 5.0
IAF_BOUND = 6.0  # the energy command's iaf_2d: U4 reaches z2 = -5; worst KL over seeds 0-8 0.033 here, 0.060 on [-5, 5] (README)


def _check_layers(n_layers):
    if int(n_layers) != n_layers or n_layers < 1:
        raise ValueError(f"n_layers must be a positive integer; got {n_layers!r}.")
    return int(n_layers)


def _autoregressive(cls, n_layers, transformer, hidden, dtype, seed, rng, **layer_options):
    rng = rng if rng is not None else make_rng(seed)
    orders = ("natural", "reversed")
    n_layers = _check_layers(n_layers)
    layers = [cls(2, transformer(), hidden, orders[k % 2], dtype, rng=rng, **layer_options) for k in range(n_layers)]
    return FlowModel(Flow(layers), StandardNormal((2,)))


def maf_2d(n_layers=20, hidden=(40, 40), scale="tanh", last_init="zeros", dtype=DEFAULT_DTYPE, seed=0, rng=None):
    """MAF with affine transformers: ``n_layers`` MADE layers, orders natural and reversed in turn.

    ``maf_2d(n_layers=8, hidden=(64, 64))`` is the 8-layer, 36,896-parameter
    MAF and ``maf_2d(n_layers=16, hidden=(44, 44))`` the 16-layer, 36,672-parameter
    one: their checkpoints load into those (the default refuses them: other shapes).

    ``scale`` is the affine transformer's log-scale function (``Affine``: "tanh",
    "softclip", "exp"); ``last_init`` the MADEs' last-layer init ("zeros": the
    flow starts as the identity). zuko 1.6's ``MAF(2, transforms=8)`` is
    ``maf_2d(n_layers=8, hidden=(64, 64), scale="softclip", last_init="uniform")``.
    """
    if scale == "learnable":
        raise ValueError("maf_2d's scale is 'tanh', 'softclip' or 'exp'; a learnable bound is not one of its options.")
    return _autoregressive(
        MaskedAutoregressive, n_layers, lambda: Affine(scale), hidden, dtype, seed, rng, last_init=last_init
    )


def nsf_ar_2d(
    n_layers=5, hidden=(64, 64), n_bins=SPLINE_BINS, bound=SPLINE_BOUND, dtype=DEFAULT_DTYPE, seed=0, rng=None
):
    """Autoregressive neural spline flow: MAF layers with the rational-quadratic spline."""
    return _autoregressive(
        MaskedAutoregressive, n_layers, lambda: RationalQuadraticSpline(n_bins, bound), hidden, dtype, seed, rng
    )


def iaf_2d(
    n_layers=2,
    hidden=(32, 32),
    n_bins=SPLINE_BINS,
    bound=SPLINE_BOUND,
    dtype=DEFAULT_DTYPE,
    seed=0,
    rng=None,
    orders=("natural", "reversed"),
):
    """IAF with spline transformers, for reverse KL (``zoo.fit_reverse_kl``): sampling is one pass per layer.

    Layer k's MADE takes ``orders[k % len(orders)]``. Each spline maps
    [-bound, bound] and is the identity outside. The energy command trains
    ``iaf_2d(bound=IAF_BOUND)`` (on [-6, 6]: KL at most planar K=32's on
    U1..U4 at 0.87x its step; README). The default bound stays 5.0, the
    bound of every earlier ``iaf_2d`` checkpoint: the bound holds no
    parameters, so a checkpoint cannot tell it, and it must be given as it
    was trained. ``iaf_2d(n_layers=4)`` is the 4-layer IAF (10,680
    parameters, about 1.55x planar K=32's step).
    """
    if isinstance(orders, str) or not orders:
        raise ValueError(f"orders must be a sequence of MADE orders, e.g. ('natural', 'reversed'); got {orders!r}.")
    rng = rng if rng is not None else make_rng(seed)
    layers = [
        IAF(2, RationalQuadraticSpline(n_bins, bound), hidden, orders[k % len(orders)], dtype, rng=rng)
        for k in range(_check_layers(n_layers))
    ]
    return FlowModel(Flow(layers), StandardNormal((2,)))


def nsf_2d(n_layers=6, hidden=(64, 64), n_bins=SPLINE_BINS, bound=SPLINE_BOUND, dtype=DEFAULT_DTYPE, seed=0, rng=None):
    """Coupling neural spline flow: layer k copies x[k % 2] and splines the other coordinate."""
    rng = rng if rng is not None else make_rng(seed)
    layers = [
        Coupling.for_vectors(
            2, numpy.arange(2) == k % 2, RationalQuadraticSpline(n_bins, bound), hidden, dtype=dtype, rng=rng
        )
        for k in range(_check_layers(n_layers))
    ]
    return FlowModel(Flow(layers), StandardNormal((2,)))
