"""Energy targets in 2D: unnormalised densities p(z) = exp(-U(z) - wall(z)) / Z for reverse-KL training.

The four potentials of Rezende & Mohamed (2015, arXiv:1505.05770, Table 1),
with a soft wall in z1 so that every target is normalisable on R^2 (U2..U4 are
periodic in z1). Fixed in docs/reference-problems.md section 2; must not drift:

    w1(z) = sin(2 pi z1 / 4)
    w2(z) = 3 exp(-0.5 ((z1 - 1) / 0.6)^2)
    w3(z) = 3 sigmoid((z1 - 1) / 0.3)
    U1(z) = 0.5 ((|z| - 2) / 0.4)^2 - ln(exp(-0.5 ((z1 - 2) / 0.6)^2) + exp(-0.5 ((z1 + 2) / 0.6)^2))
    U2(z) = 0.5 ((z2 - w1) / 0.4)^2
    U3(z) = -ln(exp(-0.5 ((z2 - w1) / 0.35)^2) + exp(-0.5 ((z2 - w1 + w2) / 0.35)^2))
    U4(z) = -ln(exp(-0.5 ((z2 - w1) / 0.4)^2) + exp(-0.5 ((z2 - w1 + w3) / 0.35)^2))
    wall(z) = 50 max(0, |z1| - 3.5)^2

``EnergyTarget.energy(z)`` is U(z) + wall(z) and ``grad(z)`` its analytic
gradient; ln Z comes from quadrature on [-6, 6]^2 (``quadrature_log_z``). A flow
q trained by reverse KL reports KL(q || p) = E_q[log q(z) + U(z) + wall(z)] + ln Z.

Shapes: z (N, 2) -> energy (N,), grad (N, 2), in the module and dtype of z.
"""

import copy
import math

import numpy

from ..backend import get_array_module, logsumexp, make_rng, sigmoid, to_numpy

__all__ = [
    "ENERGY_TARGETS",
    "LOG_Z",
    "EnergyTarget",
    "get_energy",
    "grid_log_density",
    "quadrature_log_z",
    "reverse_kl",
    "reverse_kl_from_samples",
]

ENERGY_TARGETS = ("U1", "U2", "U3", "U4")

# ln Z of each target with the wall, from docs/reference-problems.md section 4
# (quadrature on [-6, 6]^2, converged to 1e-4); quadrature_log_z recomputes them.
LOG_Z = {"U1": 1.87750, "U2": 1.98374, "U3": 2.54336, "U4": 2.61235}

WALL_AT = 3.5
WALL_STRENGTH = 50.0
QUAD_BOX = 6.0


def _lse2(a, b):
    """ln(exp(a) + exp(b)) and the weights exp(a), exp(b) / (exp(a) + exp(b)), elementwise."""
    xp = get_array_module(a)
    m = xp.maximum(a, b)
    ea, eb = xp.exp(a - m), xp.exp(b - m)
    total = ea + eb
    return m + xp.log(total), ea / total, eb / total


def _w1(z1):
    """w1 and dw1/dz1."""
    xp = get_array_module(z1)
    return xp.sin(0.5 * math.pi * z1), 0.5 * math.pi * xp.cos(0.5 * math.pi * z1)


def _w2(z1):
    """w2 and dw2/dz1."""
    xp = get_array_module(z1)
    v = 3 * xp.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)
    return v, -v * (z1 - 1) / 0.36


def _w3(z1):
    """w3 and dw3/dz1."""
    s = sigmoid((z1 - 1) / 0.3)
    return 3 * s, 3 * s * (1 - s) / 0.3


def _u1(z1, z2):
    xp = get_array_module(z1)
    r = xp.sqrt(z1 * z1 + z2 * z2)
    a = -0.5 * ((z1 - 2) / 0.6) ** 2
    b = -0.5 * ((z1 + 2) / 0.6) ** 2
    lse, pa, pb = _lse2(a, b)
    u = 0.5 * ((r - 2) / 0.4) ** 2 - lse
    # d/dz of the ring term: (r - 2) / 0.16 * z / r (0 on the origin, where |z| has no gradient)
    ring = (r - 2) / 0.16 / xp.where(r > 0, r, 1)
    du1 = ring * z1 - (pa * -(z1 - 2) / 0.36 + pb * -(z1 + 2) / 0.36)
    du2 = ring * z2
    return u, du1, du2


def _u2(z1, z2):
    w1, dw1 = _w1(z1)
    e = (z2 - w1) / 0.16
    return 0.5 * (z2 - w1) ** 2 / 0.16, -e * dw1, e


def _two_bumps(z1, z2, shift, dshift, width_a, width_b):
    """-ln(exp(-0.5 ((z2 - w1) / wa)^2) + exp(-0.5 ((z2 - w1 + shift) / wb)^2)) and its gradient."""
    w1, dw1 = _w1(z1)
    ea = z2 - w1
    eb = z2 - w1 + shift
    lse, pa, pb = _lse2(-0.5 * (ea / width_a) ** 2, -0.5 * (eb / width_b) ** 2)
    ga, gb = ea / width_a**2, eb / width_b**2  # minus the derivatives of the exponents w.r.t. ea, eb
    du2 = pa * ga + pb * gb
    du1 = pa * ga * -dw1 + pb * gb * (dshift - dw1)
    return -lse, du1, du2


def _u3(z1, z2):
    w2, dw2 = _w2(z1)
    return _two_bumps(z1, z2, w2, dw2, 0.35, 0.35)


def _u4(z1, z2):
    w3, dw3 = _w3(z1)
    return _two_bumps(z1, z2, w3, dw3, 0.4, 0.35)


_POTENTIALS = {"U1": _u1, "U2": _u2, "U3": _u3, "U4": _u4}


class EnergyTarget:
    """The target p(z) = exp(-U(z) - wall(z)) / Z of one of U1..U4.

    Args:
        name: "U1", "U2", "U3" or "U4".

    Attributes:
        name; log_z: ln Z from docs/reference-problems.md section 4.

    Shapes:
        z: (N, 2) -> energy, log_prob: (N,); grad: (N, 2).
    """

    def __init__(self, name):
        if name not in _POTENTIALS:
            raise ValueError(f"Unknown energy target {name!r}; expected one of {ENERGY_TARGETS}.")
        self.name = name
        self.log_z = LOG_Z[name]

    def _parts(self, z):
        if z.ndim != 2 or z.shape[1] != 2:
            raise ValueError(
                f"Energy target {self.name} expects z of shape (N, 2); got {tuple(z.shape)}. "
                "Reshape a single point to (1, 2)."
            )
        xp = get_array_module(z)
        z1, z2 = z[:, 0], z[:, 1]
        u, du1, du2 = _POTENTIALS[self.name](z1, z2)
        over = xp.maximum(xp.abs(z1) - WALL_AT, 0)  # (N,) distance beyond the wall
        u = u + WALL_STRENGTH * over * over
        du1 = du1 + 2 * WALL_STRENGTH * over * xp.sign(z1)
        return u, du1, du2

    def energy(self, z):
        """U(z) + wall(z), shape (N,)."""
        return self._parts(z)[0]

    def grad(self, z):
        """d(U + wall)/dz, shape (N, 2), written out by hand."""
        return self.energy_and_grad(z)[1]

    def energy_and_grad(self, z):
        """``energy(z)`` (N,) and ``grad(z)`` (N, 2) from one evaluation of the potential."""
        xp = get_array_module(z)
        u, du1, du2 = self._parts(z)
        return u, xp.stack([du1, du2], axis=1)

    def log_prob(self, z):
        """The normalised log-density -U(z) - wall(z) - ln Z, shape (N,)."""
        return -self.energy(z) - self.log_z

    def __repr__(self):
        return f"EnergyTarget({self.name!r})"


def get_energy(name):
    """The EnergyTarget called ``name`` ("U1".."U4")."""
    return EnergyTarget(name)


def _grid(n, box):
    """Midpoints of an n x n grid on [-box, box]^2: points (n^2, 2), cell width h."""
    h = 2 * box / n
    c = -box + h * (numpy.arange(n) + 0.5)
    g1, g2 = numpy.meshgrid(c, c, indexing="ij")
    return numpy.stack([g1.ravel(), g2.ravel()], axis=1), h


def quadrature_log_z(name, n=1200, box=QUAD_BOX):
    """ln Z = ln of the integral of exp(-U - wall) over [-box, box]^2, midpoint rule on n x n cells.

    The integrand is smooth and negligible at the box's edge, so the midpoint
    rule converges fast: n = 1200 (cells of 0.01) agrees with n = 2400 to 1e-6.
    """
    z, h = _grid(n, box)
    return float(logsumexp(-EnergyTarget(name).energy(z), axis=0) + 2 * math.log(h))


def grid_log_density(log_prob, n=400, box=4.0, batch=40000):
    """log q on the midpoints of an n x n grid on [-box, box]^2 (host arrays, float64).

    Args:
        log_prob: ``f(z) -> (N,)`` log-density (e.g. a FlowModel's ``log_prob``).
        n, box: the grid. batch: points per call.

    Returns:
        (log_q (n, n) indexed [i1, i2] with z1 = c[i1], z2 = c[i2]; cell width h).
    """
    z, h = _grid(n, box)
    out = numpy.concatenate([numpy.asarray(log_prob(z[i : i + batch])) for i in range(0, len(z), batch)])
    return out.reshape(n, n), h


def reverse_kl_from_samples(x, log_q, target):
    """Monte Carlo KL(q || p) = E_q[log q(x) + U(x) + wall(x)] + ln Z and its standard error.

    Args:
        x: (N, 2) samples of q; log_q: (N,) their log-density under q.
        target: an EnergyTarget.

    Returns:
        (kl, stderr) as Python floats.
    """
    x = to_numpy(x).astype(numpy.float64)
    terms = to_numpy(log_q).astype(numpy.float64) + target.energy(x)  # (N,)
    return float(terms.mean() + target.log_z), float(terms.std(ddof=1) / math.sqrt(terms.size))


def reverse_kl(model, target, n_samples=10**5, seed=1234):
    """KL(q || p) of a FlowModel against an EnergyTarget, in float64 on ``n_samples`` samples.

    The model is copied and the copy converted to float64, so the model itself
    (and an optimizer holding its arrays) is left alone. Returns (kl, stderr).
    """
    model64 = copy.deepcopy(model).astype(numpy.float64)
    x, log_q = model64.sample_and_log_prob(int(n_samples), make_rng(seed, model64.xp), dtype=numpy.float64)
    return reverse_kl_from_samples(x, log_q, target)
