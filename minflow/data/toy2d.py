"""Toy densities in 2D: exact samplers and exact log-densities.

Four densities have both an exact sampler and an exact ``log_prob``, so a
model's test NLL can be compared with the true differential entropy H(p):
NLL - H = KL(p || q) >= 0. Their definitions are fixed in
docs/reference-problems.md section 1 and must not drift:

    gaussians8    equal mixture of 8 N(2*(cos(k*pi/4), sin(k*pi/4)), 0.25^2 I)
    checkerboard  uniform on the 8 unit squares [i-2, i-1] x [j-2, j-1], i + j even
    rings         angle uniform, radius |r_k + 0.08*eps|, r_k in {0.75, 1.5, 2.25}
    moons         x = 2*(m(t) - (0.5, 0.25)) + 0.2*eps, t ~ U[0, pi], two half-circles m

Two more, ``pinwheel`` (Johnson et al. 2016, arXiv:1603.06277) and ``spirals``
(two spirals, as in FFJORD, Grathwohl et al. 2019, arXiv:1810.01367), are
sample-only: they have no exact density and their ``log_prob`` raises.

Shapes: ``sample_<name>(n, rng, dtype)`` returns x of shape (n, 2) in ``dtype``
on the array module of ``rng`` (NumPy or CuPy); ``log_prob_<name>(x)`` takes
x of shape (N, 2) and returns (N,) in the module and dtype of x, computed in
log space (log-sum-exp over mixture components or quadrature nodes).
"""

import math

import numpy

from ..backend import get_array_module, logsumexp, make_rng, to_numpy
from ..checks import check_positive_int

__all__ = [
    "ENTROPY",
    "TOY_DENSITIES",
    "NoExactDensityError",
    "ToyDensity",
    "bounding_box",
    "get_toy",
    "log_prob_checkerboard",
    "log_prob_gaussians8",
    "log_prob_moons",
    "log_prob_rings",
    "monte_carlo_entropy",
    "sample_checkerboard",
    "sample_gaussians8",
    "sample_moons",
    "sample_pinwheel",
    "sample_rings",
    "sample_spirals",
]

# Differential entropies H(p) in nats: Monte-Carlo means of -log p(x) over
# 10^6 exact samples (standard error below 0.002), from docs/reference-problems.md
# section 4; checkerboard is exact. `monte_carlo_entropy(name)` recomputes them.
ENTROPY = {
    "gaussians8": 2.1374,
    "checkerboard": math.log(8.0),
    "rings": 2.1372,
    "moons": 2.3936,
}

_LOG_2PI = math.log(2.0 * math.pi)


def _check_x(x, name):
    """x as a floating (N, 2) array on its own module; a clear error otherwise."""
    xp = get_array_module(x)
    x = xp.asarray(x)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(
            f"log_prob_{name} expects x of shape (N, 2); got {tuple(x.shape)}. Reshape a single point to (1, 2)."
        )
    if x.dtype.kind != "f":
        x = x.astype(numpy.float64)
    return xp, x


def _log_normal_2d(d2, std):
    """log N(x; mu, std^2 I) in 2D from the squared distance d2 = |x - mu|^2."""
    return -0.5 * d2 / std**2 - _LOG_2PI - 2.0 * math.log(std)


# ---------------------------------------------------------------- gaussians8

_G8_RADIUS, _G8_STD = 2.0, 0.25


def sample_gaussians8(n, rng, dtype=numpy.float32):
    """n points from the mixture of 8 Gaussians; returns (n, 2) in ``dtype``."""
    k = rng.integers(0, 8, size=n)  # (n,) component index
    xp = get_array_module(k)
    angle = k * (math.pi / 4)  # (n,)
    mean = _G8_RADIUS * xp.stack([xp.cos(angle), xp.sin(angle)], axis=1)  # (n, 2)
    x = mean + _G8_STD * rng.standard_normal(size=(n, 2))  # (n, 2)
    return x.astype(dtype)


def log_prob_gaussians8(x):
    """log p(x) for x (N, 2): log-sum-exp over the 8 components; returns (N,)."""
    xp, x = _check_x(x, "gaussians8")
    angle = xp.arange(8, dtype=x.dtype) * (math.pi / 4)  # (8,)
    mx, my = _G8_RADIUS * xp.cos(angle), _G8_RADIUS * xp.sin(angle)  # (8,) each
    d2 = (x[:, :1] - mx) ** 2 + (x[:, 1:] - my) ** 2  # (N, 8)
    a = math.log(1 / 8) + _log_normal_2d(d2, _G8_STD)  # (N, 8)
    return logsumexp(a, axis=1).astype(x.dtype)  # (N,)


# -------------------------------------------------------------- checkerboard

# The 8 squares [i-2, i-1] x [j-2, j-1] with i + j even, as (i, j) pairs.
_CB_SQUARES = [(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0]


def sample_checkerboard(n, rng, dtype=numpy.float32):
    """n points uniform on the 8 black squares; returns (n, 2) in ``dtype``."""
    s = rng.integers(0, 8, size=n)  # (n,) square index
    xp = get_array_module(s)
    corners = xp.asarray([(i - 2, j - 2) for i, j in _CB_SQUARES], dtype=numpy.float64)
    x = corners[s] + rng.uniform(0.0, 1.0, size=(n, 2))  # (n, 2)
    return x.astype(dtype)


def log_prob_checkerboard(x):
    """log p(x) for x (N, 2): log(1/8) on the closed squares, -inf elsewhere.

    Squares are closed so that a sample rounded onto an edge (float32 can
    round u = 0.99999999 to 1) still has its density; edges have no mass.
    """
    xp, x = _check_x(x, "checkerboard")
    a = x + 2.0  # (N, 2), squares now [i, i+1] x [j, j+1]
    lo = xp.ceil(a) - 1  # (N, 2) cell to the left/below an integer edge
    hi = xp.floor(a)  # (N, 2) the cell containing a (right/above an edge)
    inside = xp.zeros(x.shape[0], dtype=bool)  # (N,)
    for ci in (lo[:, 0], hi[:, 0]):
        for cj in (lo[:, 1], hi[:, 1]):
            valid = (ci >= 0) & (ci <= 3) & (cj >= 0) & (cj <= 3)
            inside |= valid & ((ci + cj) % 2 == 0)
    return xp.where(inside, math.log(1 / 8), -math.inf).astype(x.dtype)  # (N,)


# --------------------------------------------------------------------- rings

_RING_RADII, _RING_STD = (0.75, 1.5, 2.25), 0.08


def sample_rings(n, rng, dtype=numpy.float32):
    """n points on 3 noisy rings, radius |r_k + 0.08*eps|; returns (n, 2)."""
    k = rng.integers(0, 3, size=n)  # (n,) ring index
    xp = get_array_module(k)
    r_k = xp.asarray(_RING_RADII, dtype=numpy.float64)[k]  # (n,)
    r = xp.abs(r_k + _RING_STD * rng.standard_normal(size=n))  # (n,)
    theta = rng.uniform(0.0, 2 * math.pi, size=n)  # (n,)
    x = xp.stack([r * xp.cos(theta), r * xp.sin(theta)], axis=1)  # (n, 2)
    return x.astype(dtype)


def log_prob_rings(x):
    """log p(x) for x (N, 2); returns (N,).

    p(x) = sum_k 1/3 * (N(r; r_k, s^2) + N(-r; r_k, s^2)) / (2*pi*r), r = |x|:
    the radius is a folded normal, spread uniformly over a circle of length
    2*pi*r. The density is +inf at the origin (a 1/r singularity of mass
    weight exp(-44)), where this returns +inf.
    """
    xp, x = _check_x(x, "rings")
    r = xp.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2)[:, None]  # (N, 1)
    r_k = xp.asarray(_RING_RADII, dtype=x.dtype)  # (3,)
    log_n1 = -0.5 * math.log(2 * math.pi * _RING_STD**2)  # log N normaliser, 1-D
    a = xp.concatenate(
        [-0.5 * ((r - r_k) / _RING_STD) ** 2, -0.5 * ((r + r_k) / _RING_STD) ** 2],
        axis=1,
    )  # (N, 6): the 3 rings, each folded at r = 0
    out = logsumexp(a, axis=1) + (math.log(1 / 3) + log_n1)  # (N,) log p(r)
    return (out - xp.log(2 * math.pi * r[:, 0])).astype(x.dtype)  # (N,)


# --------------------------------------------------------------------- moons

_MOON_STD = 0.2
_MOON_NODES = 512  # Gauss-Legendre nodes per moon on [0, pi]
_MOON_CHUNK = 2048  # rows of x per (chunk, 1024) block of quadrature terms
_moon_table = None  # host (1024, 2) centres and (1024,) log weights, built once


def _moon_curve(t, upper, xp):
    """The two half-circles before scaling: (cos t, sin t) or (1-cos t, 0.5-sin t)."""
    mx = xp.where(upper, xp.cos(t), 1.0 - xp.cos(t))
    my = xp.where(upper, xp.sin(t), 0.5 - xp.sin(t))
    return mx, my


def _moons_quadrature():
    """Host table: curve points 2*(m(t) - (0.5, 0.25)) at the nodes, and log weights.

    Gauss-Legendre on [0, pi]: weights w sum to pi, so w/pi are the weights of
    t ~ U[0, pi]; each moon has probability 1/2. Returns ((1024, 2), (1024,)).
    """
    global _moon_table
    if _moon_table is None:
        u, w = numpy.polynomial.legendre.leggauss(_MOON_NODES)  # on [-1, 1]
        t = 0.5 * math.pi * (u + 1.0)  # (512,) nodes on [0, pi]
        w = 0.5 * math.pi * w  # (512,) weights, sum pi
        t2 = numpy.concatenate([t, t])  # (1024,) upper moon, then lower
        upper = numpy.arange(2 * _MOON_NODES) < _MOON_NODES
        mx, my = _moon_curve(t2, upper, numpy)
        centres = numpy.stack([2 * (mx - 0.5), 2 * (my - 0.25)], axis=1)  # (1024, 2)
        log_w = numpy.log(numpy.concatenate([w, w]) / math.pi) + math.log(0.5)
        _moon_table = (centres, log_w)
    return _moon_table


def sample_moons(n, rng, dtype=numpy.float32):
    """n points from the two noisy half-circles; returns (n, 2) in ``dtype``."""
    t = rng.uniform(0.0, math.pi, size=n)  # (n,)
    xp = get_array_module(t)
    upper = rng.uniform(0.0, 1.0, size=n) < 0.5  # (n,) which moon
    mx, my = _moon_curve(t, upper, xp)
    m = xp.stack([2 * (mx - 0.5), 2 * (my - 0.25)], axis=1)  # (n, 2)
    x = m + _MOON_STD * rng.standard_normal(size=(n, 2))  # (n, 2)
    return x.astype(dtype)


def log_prob_moons(x):
    """log p(x) for x (N, 2); returns (N,).

    p(x) = sum_moon 1/2 * integral_0^pi N(x; c(t), 0.2^2 I) dt/pi, by
    Gauss-Legendre with 512 nodes per moon, summed in log space:
    logsumexp over the 1024 nodes of log(w/(2*pi)) + log N(x; c(t), 0.2^2 I).
    Rows are processed in chunks so memory stays at (2048, 1024) per step.
    """
    xp, x = _check_x(x, "moons")
    centres, log_w = _moons_quadrature()
    cx = xp.asarray(centres[:, 0], dtype=x.dtype)  # (1024,)
    cy = xp.asarray(centres[:, 1], dtype=x.dtype)  # (1024,)
    log_w = xp.asarray(log_w, dtype=x.dtype)  # (1024,)
    out = []
    for start in range(0, x.shape[0], _MOON_CHUNK):
        xb = x[start : start + _MOON_CHUNK]  # (B, 2)
        d2 = (xb[:, :1] - cx) ** 2 + (xb[:, 1:] - cy) ** 2  # (B, 1024)
        a = log_w + _log_normal_2d(d2, _MOON_STD)  # (B, 1024)
        out.append(logsumexp(a, axis=1))  # (B,)
    if not out:
        return xp.zeros(0, dtype=x.dtype)
    return xp.concatenate(out).astype(x.dtype)  # (N,)


# ----------------------------------------------------- sample-only densities


def sample_pinwheel(n, rng, dtype=numpy.float32):
    """n points from a 5-armed pinwheel (Johnson et al. 2016); returns (n, 2).

    Each arm: a point (1 + 0.3*e1, 0.1*e2) rotated by its arm's angle plus
    0.25*exp(1 + 0.3*e1), then scaled by 2. Sample-only: no exact density.
    """
    k = rng.integers(0, 5, size=n)  # (n,) arm index
    xp = get_array_module(k)
    e = rng.standard_normal(size=(n, 2))  # (n, 2)
    f0 = 1.0 + 0.3 * e[:, 0]  # (n,) radial coordinate
    f1 = 0.1 * e[:, 1]  # (n,) tangential coordinate
    angle = k * (2 * math.pi / 5) + 0.25 * xp.exp(f0)  # (n,)
    c, s = xp.cos(angle), xp.sin(angle)
    x = 2 * xp.stack([f0 * c - f1 * s, f0 * s + f1 * c], axis=1)  # (n, 2)
    return x.astype(dtype)


def sample_spirals(n, rng, dtype=numpy.float32):
    """n points from two interleaved spirals (FFJORD's "2spirals"); returns (n, 2).

    t = 3*pi*sqrt(u), arm point (-t*cos t, t*sin t) + U[0, 0.5)^2, one arm
    mirrored through the origin, divided by 3, plus 0.1*eps. Sample-only.
    """
    u = rng.uniform(0.0, 1.0, size=n)  # (n,)
    xp = get_array_module(u)
    t = 3 * math.pi * xp.sqrt(u)  # (n,) angle along the arm, 0 .. 540 degrees
    jitter = rng.uniform(0.0, 0.5, size=(n, 2))  # (n, 2)
    arm = xp.stack([-t * xp.cos(t), t * xp.sin(t)], axis=1) + jitter  # (n, 2)
    sign = xp.where(rng.uniform(0.0, 1.0, size=n) < 0.5, 1.0, -1.0)[:, None]  # (n, 1)
    x = sign * arm / 3 + 0.1 * rng.standard_normal(size=(n, 2))  # (n, 2)
    return x.astype(dtype)


# ------------------------------------------------------------------ registry


class NoExactDensityError(ValueError, NotImplementedError):
    """log_prob was asked of a sample-only toy density (pinwheel, spirals)."""


class ToyDensity:
    """A named 2D toy density: a sampler and, where it exists, the exact log-density.

    Args:
        name: the registry key, e.g. "moons".
        sampler: ``sampler(n, rng, dtype)`` -> (n, 2) array.
        log_prob_fn: ``log_prob_fn(x)`` -> (N,) array, or None if sample-only.
        box: (lo, hi), the square [lo, hi]^2 that holds essentially all mass.
        entropy: H(p) in nats, or None if sample-only.

    Shapes:
        sample(n, rng, dtype) -> (n, 2); log_prob(x): (N, 2) -> (N,).
    """

    def __init__(self, name, sampler, log_prob_fn, box, entropy=None):
        self.name = name
        self._sampler = sampler
        self._log_prob = log_prob_fn
        self.box = box
        self.entropy = entropy

    @property
    def has_log_prob(self):
        """True if the exact log-density is available."""
        return self._log_prob is not None

    def sample(self, n, rng, dtype=numpy.float32):
        """n exact samples, shape (n, 2), on the module of ``rng``."""
        return self._sampler(check_positive_int(n, "n"), rng, dtype)

    def log_prob(self, x):
        """Exact log p(x) for x (N, 2); returns (N,) in the module and dtype of x."""
        if self._log_prob is None:
            raise self._no_density_error()
        return self._log_prob(x)

    def _no_density_error(self):
        exact = ", ".join(k for k, d in TOY_DENSITIES.items() if d.has_log_prob)
        return NoExactDensityError(
            f"Dataset '{self.name}' is sample-only: there is no exact density, "
            f"so log_prob and its entropy are not defined. Use one with an exact "
            f"density ({exact}) to compare an NLL with the entropy."
        )

    def __repr__(self):
        return f"ToyDensity({self.name!r}, has_log_prob={self.has_log_prob})"


TOY_DENSITIES = {
    d.name: d
    for d in [
        ToyDensity(
            "gaussians8",
            sample_gaussians8,
            log_prob_gaussians8,
            (-3.5, 3.5),
            ENTROPY["gaussians8"],
        ),
        ToyDensity(
            "checkerboard",
            sample_checkerboard,
            log_prob_checkerboard,
            (-2.0, 2.0),
            ENTROPY["checkerboard"],
        ),
        ToyDensity("rings", sample_rings, log_prob_rings, (-3.0, 3.0), ENTROPY["rings"]),
        ToyDensity("moons", sample_moons, log_prob_moons, (-4.5, 4.5), ENTROPY["moons"]),
        ToyDensity("pinwheel", sample_pinwheel, None, (-5.0, 5.0)),
        ToyDensity("spirals", sample_spirals, None, (-4.5, 4.5)),
    ]
}


def get_toy(name):
    """The ToyDensity registered under ``name``; ValueError listing the names if unknown."""
    if name not in TOY_DENSITIES:
        raise ValueError(f"Unknown dataset {name!r}; expected one of: {', '.join(TOY_DENSITIES)}")
    return TOY_DENSITIES[name]


def bounding_box(name):
    """(lo, hi): the square [lo, hi]^2 holding essentially all of the mass.

    Exact densities lose under 1e-6 of their mass outside it (checkerboard:
    none); use it for density plots and grid integration.
    """
    return get_toy(name).box


def monte_carlo_entropy(name, n=10**6, seed=0, xp=None):
    """H(p) = E[-log p(x)] over n exact float64 samples, as a Python float.

    Recomputes ``ENTROPY[name]`` (docs/reference-problems.md section 4 used n = 10^6,
    standard error below 0.002 nats). ``xp`` picks where the samples are drawn
    (default: the default backend).
    """
    toy = get_toy(name)
    if not toy.has_log_prob:
        raise toy._no_density_error()
    rng = make_rng(seed, xp)
    x = toy.sample(n, rng, dtype=numpy.float64)  # (n, 2)
    return float(to_numpy(-toy.log_prob(x).mean()))
