"""Tests for minflow/flows/radial.py: the radial flow, its constraint and its inverse through the radius.

Layers without ``.to(xp)`` live on the default backend (MINFLOW_BACKEND): their
inputs go there with ``to_device`` and their results come back with ``to_numpy``.
"""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.flows import Flow, Inverse
from minflow.flows.radial import Radial
from minflow.gradcheck import brute_force_logdet, check_gradients


def make_radial(dim, regime):
    """A factory of radial layers with non-zero parameters.

    "free": random raw parameters; "contracting": beta_raw = -5, so beta = -alpha + 0.0067
    (the map pulls hard towards z0, the bound beta > -alpha almost reached);
    "expanding": beta_raw = 3, beta > 0 (pushes away from z0).
    """

    def make(dtype):
        layer = randomize_params(Radial(dim, dtype=dtype, rng=make_rng(0)), numpy.random.default_rng(dim), scale=0.8)
        if regime != "free":
            layer.params["beta_raw"][...] = {"contracting": -5.0, "expanding": 3.0}[regime]
        return layer

    return make


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("regime", ["free", "contracting", "expanding"])
def test_radial_passes_all_checks(dim, regime, xp, rng):
    # gradients of the input, z0, alpha_raw and beta_raw in both directions (the forward one
    # through the solved radius), log-dets vs slogdet of the brute-force Jacobian, round trips
    assert_layer_passes_all_checks(make_radial(dim, regime), 1.5 * rng.standard_normal((6, dim)), xp)


def test_radial_inverse_is_the_paper_formula(rng):
    layer = make_radial(3, "contracting")(numpy.float64)
    params = {name: to_numpy(p) for name, p in layer.params.items()}
    alpha = numpy.log1p(numpy.exp(params["alpha_raw"][0]))
    beta = -alpha + numpy.log1p(numpy.exp(params["beta_raw"][0]))  # Rezende & Mohamed appendix A.2
    z0 = params["z0"]
    z = rng.standard_normal((5, 3))
    x, logdet = (to_numpy(a) for a in layer.inverse(to_device(z)))
    r = numpy.linalg.norm(z - z0, axis=1)
    h = 1 / (alpha + r)
    numpy.testing.assert_allclose(x, z + (beta * h)[:, None] * (z - z0), rtol=1e-13)
    # det = (1 + beta h)^(D-1) (1 + beta h + beta h'(r) r), h' = -h^2
    expected = 2 * numpy.log(1 + beta * h) + numpy.log(1 + beta * h - beta * h * h * r)
    numpy.testing.assert_allclose(logdet, expected, rtol=1e-10)
    assert beta < 0 and beta > -alpha


def test_radial_alpha_beta_satisfy_constraint(rng):
    layer = Radial(2, dtype=numpy.float64, rng=make_rng(0))
    for raw in 30 * rng.standard_normal((200, 2)):
        layer.params["alpha_raw"][...], layer.params["beta_raw"][...] = raw
        alpha, beta = layer.alpha_beta()
        assert alpha[0] > 0 and beta[0] >= -alpha[0]


@pytest.mark.parametrize("regime", ["free", "contracting", "expanding"])
def test_radial_inverse_through_radius_roundtrips_to_1e9(regime, rng):
    layer = make_radial(2, regime)(numpy.float64)
    z = numpy.concatenate([rng.standard_normal((500, 2)), 10 * rng.standard_normal((100, 2))])
    z[0] = to_numpy(layer.params["z0"]) + 1e-9  # next to the centre
    z = to_device(z)
    x, logdet_inv = layer.inverse(z)
    z_back, logdet_fwd = layer.forward(x)
    assert float(abs(z_back - z).max()) < 1e-9
    assert float(abs(logdet_fwd + logdet_inv).max()) < 1e-9
    x = to_device(3 * rng.standard_normal((500, 2)))
    assert float(abs(layer.inverse(layer.forward(x)[0])[0] - x).max()) < 1e-9


def test_radial_centre_maps_to_centre_with_finite_gradients():
    layer = make_radial(2, "contracting")(numpy.float64)
    z0 = layer.params["z0"].copy()
    ones_x, ones_logdet = to_device(numpy.ones((1, 2))), to_device(numpy.ones(1))
    for run, run_backward in ((layer.forward, layer.backward), (layer.inverse, layer.inverse_backward)):
        out, logdet = run(z0[None, :].copy())
        numpy.testing.assert_allclose(to_numpy(out[0]), to_numpy(z0), atol=1e-15)
        assert bool(numpy.isfinite(logdet).all())
        assert bool(numpy.isfinite(run_backward(ones_x, ones_logdet)).all())


def test_radial_forward_logdet_matches_jacobian_when_contracting(rng):
    layer = make_radial(2, "contracting")(numpy.float64)
    x = layer.params["z0"] + to_device(0.3 * rng.standard_normal((8, 2)))
    logdet = to_numpy(layer.forward(x)[1])
    numpy.testing.assert_allclose(logdet, to_numpy(brute_force_logdet(layer.forward, x, h=1e-7)), atol=1e-6)
    assert logdet.min() > 0.3  # a contracting map (expanding in this direction): a real test


def test_radial_gradcheck_forward_near_the_centre(rng):
    layer = make_radial(3, "free")(numpy.float64)
    x = layer.params["z0"] + to_device(0.05 * rng.standard_normal((4, 3)))
    report = check_gradients(layer, x, directions=("forward",))
    assert report.ok, report


def test_radial_in_a_flow_with_its_inverse_is_identity(rng):
    layer = make_radial(3, "expanding")(numpy.float64)
    x = to_device(rng.standard_normal((4, 3)))
    out, logdet = Flow([Inverse(layer), layer]).forward(x)
    assert float(abs(out - x).max()) < 1e-12 and float(abs(logdet).max()) < 1e-12


def test_radial_initialisation():
    layer = Radial(2, rng=make_rng(5))
    assert set(layer.params) == {"z0", "alpha_raw", "beta_raw"}
    assert layer.params["z0"].shape == (2,) and layer.params["alpha_raw"].shape == (1,)
    assert all(numpy.abs(p).max() <= 2**-0.5 and p.dtype == numpy.float32 for p in layer.params.values())


def test_radial_rejects_wrong_shape():
    layer = Radial(3, rng=make_rng(0))
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 3\); got \(4, 2\)"):
        layer.forward(numpy.zeros((4, 2), numpy.float32))
    with pytest.raises(ValueError, match=r"expects z of shape \(N, 3\)"):
        layer.inverse(numpy.zeros((4, 3, 1), numpy.float32))


def test_radial_backward_needs_its_pass(rng):
    layer = make_radial(2, "free")(numpy.float64)
    layer.inverse(to_device(rng.standard_normal((3, 2))))
    with pytest.raises(RuntimeError, match="forward\\(\\) has not been called"):
        layer.backward(to_device(numpy.ones((3, 2))), to_device(numpy.ones(3)))
