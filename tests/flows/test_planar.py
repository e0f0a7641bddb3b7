"""Tests for minflow/flows/planar.py: the planar flow, its constraint and its numerical inverse.

Layers without ``.to(xp)`` live on the default backend (MINFLOW_BACKEND): their
inputs go there with ``to_device`` and their results come back with ``to_numpy``.
"""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import make_rng, softplus, to_device, to_numpy
from minflow.data.energy import get_energy, grid_log_density
from minflow.flows import Flow, Inverse
from minflow.flows.planar import Planar, PlanarInverseError
from minflow.gradcheck import brute_force_logdet
from minflow.zoo.p2 import fit_reverse_kl, planar_2d


def set_params(layer, u, w, b):
    for name, value in (("u", u), ("w", w), ("b", b)):
        p = layer.params[name]
        p[...] = to_device(numpy.broadcast_to(value, p.shape), dtype=p.dtype)
    return layer


def host_params(layer):
    return (to_numpy(layer.params[k]) for k in ("u", "w", "b"))


def make_planar(dim, regime):
    """A factory of planar layers with non-zero parameters in a given regime of the constraint.

    "free": random u, w (w.u mostly > -1, the correction is small);
    "active": w.u = -3, where the unconstrained map would fold (u_hat differs a lot from u);
    "near_bound": w.u = -6, so w.u_hat = -1 + 0.0025 and 1 + u_hat.psi comes close to 0.
    """

    def make(dtype):
        layer = randomize_params(Planar(dim, dtype=dtype, rng=make_rng(0)), numpy.random.default_rng(dim), scale=0.8)
        if regime != "free":
            w = to_numpy(layer.params["w"]).astype(numpy.float64)
            target = {"active": -3.0, "near_bound": -6.0}[regime]
            u = to_numpy(layer.params["u"]).astype(numpy.float64)
            u = u - (w @ u - target) * w / (w @ w)  # keep u's part orthogonal to w, set w.u = target
            layer.params["u"][...] = to_device(u, dtype=dtype)
        return layer

    return make


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("regime", ["free", "active", "near_bound"])
def test_planar_passes_all_checks(dim, regime, xp, rng):
    # gradients of the input, u, w and b in both directions (the forward one through the
    # numerical inverse), log-dets vs slogdet of the brute-force Jacobian, round trips, dtypes
    assert_layer_passes_all_checks(make_planar(dim, regime), 1.5 * rng.standard_normal((6, dim)), xp)


def test_planar_inverse_is_the_paper_formula(rng):
    layer = make_planar(2, "active")(numpy.float64)
    u, w, b = host_params(layer)
    wu = w @ u
    u_hat = u + (-1 + numpy.log1p(numpy.exp(wu)) - wu) * w / (w @ w)  # Rezende & Mohamed appendix A.1
    z = rng.standard_normal((5, 2))
    x, logdet = (to_numpy(a) for a in layer.inverse(to_device(z)))
    a = z @ w + b
    numpy.testing.assert_allclose(x, z + numpy.tanh(a)[:, None] * u_hat, rtol=1e-13)
    psi = (1 - numpy.tanh(a) ** 2)[:, None] * w
    numpy.testing.assert_allclose(logdet, numpy.log(numpy.abs(1 + psi @ u_hat)), rtol=1e-12)
    assert wu < -1  # the case where the constraint matters


def test_planar_u_hat_satisfies_constraint(rng):
    layer = Planar(3, dtype=numpy.float64, rng=make_rng(0))
    for scale in (0.1, 1.0, 10.0, 100.0):
        for _ in range(50):
            u, w = scale * rng.standard_normal(3), scale * rng.standard_normal(3)
            set_params(layer, u, w, 0.0)
            u_hat = to_numpy(layer.u_hat())
            rounding = 1e-14 * numpy.linalg.norm(w) * numpy.linalg.norm(u_hat)  # of the dot product itself
            assert w @ u_hat >= -1 - rounding
            numpy.testing.assert_allclose(w @ u_hat, -1 + softplus(w @ u), rtol=1e-9, atol=10 * rounding)
            # the correction is along w only: u_hat - u is parallel to w
            assert abs(numpy.cross(u_hat - u, w)).max() <= 1e-9 * scale * (1 + abs(u_hat - u).max())


def test_planar_logdet_stays_finite_at_the_bound():
    # w.u = -50: w.u_hat = -1 + 2e-22, and at w.z + b = 0 the Jacobian 1 + u_hat.psi is 2e-22;
    # computed as tanh^2 + (1 - tanh^2) softplus(w.u) it stays positive, its log finite
    layer = set_params(
        Planar(2, dtype=numpy.float64, rng=make_rng(0)), numpy.array([-50.0, 0.0]), numpy.array([1.0, 0.0]), 0.0
    )
    z = numpy.array([[0.0, 1.0], [1e-12, 0.0], [2.0, 0.0]])
    logdet = to_numpy(layer.inverse(to_device(z))[1])
    assert numpy.isfinite(logdet).all()
    numpy.testing.assert_allclose(logdet[0], numpy.log(numpy.log1p(numpy.exp(-50.0))), rtol=1e-12)
    assert logdet[0] < -49


@pytest.mark.parametrize("regime", ["free", "active", "near_bound"])
def test_planar_numerical_inverse_roundtrips_to_1e9(regime, rng):
    layer = make_planar(2, regime)(numpy.float64)
    z = to_device(numpy.concatenate([rng.standard_normal((500, 2)), 10 * rng.standard_normal((100, 2))]))
    x, logdet_inv = layer.inverse(z)
    z_back, logdet_fwd = layer.forward(x)
    assert float(abs(z_back - z).max()) < 1e-9
    assert float(abs(logdet_fwd + logdet_inv).max()) < 1e-9
    # and the other way round, from x
    x = to_device(3 * rng.standard_normal((500, 2)))
    assert float(abs(layer.inverse(layer.forward(x)[0])[0] - x).max()) < 1e-9


def test_planar_solve_is_safeguarded_where_newton_alone_fails():
    # w.u = -40: w.u_hat rounds to -1, so g'(a) = 1 + m (1 - tanh^2 a) = tanh^2 a vanishes at the
    # (triple) root a = 0 and a plain Newton step divides by zero; the bisection safeguard still converges
    layer = set_params(
        Planar(2, dtype=numpy.float64, rng=make_rng(0)), numpy.array([-40.0, 0.3]), numpy.array([1.0, 0.0]), 0.1
    )
    x = to_device(numpy.stack([numpy.linspace(-2, 2, 2001), numpy.linspace(1, -1, 2001)], axis=1))
    z, logdet = layer.forward(x)
    assert bool(numpy.isfinite(logdet).all()) and float(logdet.max()) > 10  # a nearly singular map, inverted
    assert float(abs(layer.inverse(z)[0] - x).max()) < 1e-9


@pytest.mark.parametrize("wu", [5.0, 18.0, 50.0])
def test_planar_solve_converges_for_large_w_u_hat(wu):
    # large w.u_hat: plain Newton (even kept inside the bracket) bounces across tanh's inflection
    # and stalls for some y; the rtsafe rule (bisect unless the step halves) converges for every y
    layer = set_params(
        Planar(2, dtype=numpy.float64, rng=make_rng(0)), numpy.array([wu, 0.3]), numpy.array([1.0, 0.0]), 0.1
    )
    x = to_device(numpy.stack([numpy.linspace(-3 * wu, 3 * wu, 20001), numpy.linspace(-1, 1, 20001)], axis=1))
    z, logdet = layer.forward(x)
    assert bool(numpy.isfinite(logdet).all())
    assert float(abs(layer.forward(layer.inverse(z)[0])[0] - z).max()) < 1e-9
    # the last Newton step takes the solve to rounding level, relative to the size of x
    assert float(abs(layer.inverse(z)[0] - x).max()) < 1e-13 * (1 + float(abs(x).max()))


def test_planar_forward_logdet_matches_jacobian_near_the_bound(rng):
    layer = make_planar(2, "near_bound")(numpy.float64)
    x = to_device(rng.standard_normal((8, 2)))
    logdet = to_numpy(layer.forward(x)[1])
    numpy.testing.assert_allclose(logdet, to_numpy(brute_force_logdet(layer.forward, x, h=1e-6)), atol=1e-6)
    assert logdet.max() > 1.0  # the map contracts hard here: a real test of the bound


def test_planar_forward_raises_when_solve_does_not_converge(rng):
    layer = make_planar(2, "near_bound")(numpy.float64)
    layer.max_iter = 1
    with pytest.raises(PlanarInverseError, match="did not converge in 1 iterations"):
        layer.forward(to_device(3 * rng.standard_normal((20, 2))))


def test_planar_forward_keeps_float32(rng):
    layer = make_planar(2, "active")(numpy.float32)
    x = to_device(rng.standard_normal((7, 2)).astype(numpy.float32))
    z, logdet = layer.forward(x)
    assert z.dtype == logdet.dtype == numpy.float32
    assert float(abs(layer.inverse(z)[0] - x).max()) < 1e-5


def test_planar_in_a_flow_with_its_inverse_is_identity(rng):
    layer = make_planar(3, "active")(numpy.float64)
    x = to_device(rng.standard_normal((4, 3)))
    out, logdet = Flow([Inverse(layer), layer]).forward(x)
    assert float(abs(out - x).max()) < 1e-12 and float(abs(logdet).max()) < 1e-12


def test_planar_initialisation_follows_p2():
    layer = Planar(2, rng=make_rng(3))
    u, w, b = (layer.params[k] for k in ("u", "w", "b"))
    assert u.dtype == numpy.float32 and u.shape == w.shape == (2,) and b.shape == (1,)
    assert numpy.abs(u).max() <= 2**0.5 and numpy.abs(w).max() <= 1.0 and b[0] == 0.0
    big = Planar(2000, rng=make_rng(3))  # the ranges are really U(-sqrt 2, sqrt 2) and U(-1, 1)
    assert numpy.abs(big.params["u"]).max() > 1.35 and numpy.abs(big.params["w"]).max() > 0.98


def test_planar_rejects_wrong_shape():
    layer = Planar(2, rng=make_rng(0))
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 2\); got \(4, 3\)"):
        layer.forward(numpy.zeros((4, 3), numpy.float32))
    with pytest.raises(ValueError, match=r"expects z of shape \(N, 2\); got \(4,\)"):
        layer.inverse(numpy.zeros(4, numpy.float32))
    with pytest.raises(ValueError, match=r"features \(D\) to be a positive integer"):
        Planar(0, rng=make_rng(0))


def test_planar_backward_needs_its_pass(rng):
    layer = make_planar(2, "free")(numpy.float64)
    layer.forward(to_device(rng.standard_normal((3, 2))))
    with pytest.raises(RuntimeError, match="inverse\\(\\) has not been called"):
        layer.inverse_backward(to_device(numpy.ones((3, 2))), to_device(numpy.ones(3)))


def test_planar_trained_density_integrates_to_one():
    # K = 8 planar layers, a short reverse-KL run on U1, then exp(log q) on a grid over
    # [-6, 6]^2 through the numerical inverse: the exact density must integrate to 1.
    model = planar_2d(8, seed=0)
    history = fit_reverse_kl(model, get_energy("U1"), n_steps=300, progress=False, log_every=50)
    assert history["loss"][-1] < history["loss"][0] - 1.0  # it did train
    log_q, h = grid_log_density(lambda z: to_numpy(model.log_prob(to_device(z))), n=300, box=6.0)
    mass = numpy.exp(log_q).sum() * h * h
    assert abs(mass - 1) < 1e-2, mass
