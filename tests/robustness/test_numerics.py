"""Numerical edge cases: finite values or a clear error, never a silent NaN.

Very large |x| in the base density and in couplings; pixels at 0 and at the
top level through the logit; extreme parameters (a saturated log-scale, a
near-singular or singular 1x1 convolution, a planar w near zero, radial
alpha and beta at the ends of their range).

Layers and models live on the default backend (MINFLOW_BACKEND): inputs go
there with ``to_device``, results come back with ``to_numpy`` to be compared.
"""

import numpy
import pytest

from minflow.backend import logsumexp, make_rng, to_device, to_numpy
from minflow.data.energy import ENERGY_TARGETS, get_energy
from minflow.data.toy2d import TOY_DENSITIES
from minflow.diagnostics import NonFiniteError
from minflow.distributions import StandardNormal
from minflow.flows import AdditiveCoupling, AffineCoupling, half_mask
from minflow.flows.actnorm import ActNorm
from minflow.flows.invertible_linear import InvertibleLinear, InvertibleLinearLU
from minflow.flows.planar import Planar
from minflow.flows.preprocessing import Logit, dequantize
from minflow.flows.radial import Radial
from minflow.zoo.d8 import d8
from minflow.zoo.p2 import planar_2d
from minflow.zoo.r2 import realnvp_2d

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

F32, F64 = numpy.float32, numpy.float64


def _randomize(module, seed=0, scale=0.5):
    rng = numpy.random.default_rng(seed)
    for p in module.params.values():
        p[...] = to_device(scale * rng.standard_normal(p.shape))
    return module


def _signs(n, d, seed=0):
    return numpy.where(numpy.random.default_rng(seed).random((n, d)) < 0.5, -1.0, 1.0)


# -- the base density -------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "finite_up_to"), [(F32, 1e18), (F64, 1e150)])
def test_standard_normal_log_prob_is_exact_for_huge_z_and_never_nan(dtype, finite_up_to):
    base = StandardNormal((3,))
    for magnitude in (1.0, 1e4, 1e10, finite_up_to):
        z = (magnitude * _signs(4, 3)).astype(dtype)
        exact = -0.5 * 3 * magnitude**2 - 1.5 * numpy.log(2 * numpy.pi)
        out = base.log_prob(z)
        assert out.dtype == dtype and numpy.isfinite(out).all()
        numpy.testing.assert_allclose(out, exact, rtol=1e-6)
    # beyond: z^2 is above the dtype's range, and so is the true log-density: -inf, not NaN
    huge = numpy.full((2, 3), numpy.finfo(dtype).max / 2, dtype=dtype)
    assert (base.log_prob(huge) == -numpy.inf).all()


def test_logsumexp_of_all_minus_infinity_is_minus_infinity_not_nan():
    a = numpy.array([[-numpy.inf, -numpy.inf], [-numpy.inf, 0.0]], dtype=F32)
    numpy.testing.assert_array_equal(logsumexp(a, axis=1), [-numpy.inf, 0.0])


# -- couplings with very large |x| ------------------------------------------------------


@pytest.mark.parametrize("cls", [AffineCoupling, AdditiveCoupling])
@pytest.mark.parametrize(("dtype", "magnitudes"), [(F32, (1e3, 1e8, 1e15)), (F64, (1e3, 1e30, 1e100))])
def test_coupling_with_huge_inputs_stays_finite_and_invertible(cls, dtype, magnitudes):
    layer = _randomize(cls(4, half_mask(4), hidden=(8, 8), dtype=dtype, rng=make_rng(0)))
    for magnitude in magnitudes:
        x = to_device((magnitude * _signs(6, 4) * numpy.random.default_rng(1).uniform(0.5, 1, (6, 4))).astype(dtype))
        z, logdet = layer.forward(x)
        assert numpy.isfinite(z).all() and numpy.isfinite(logdet).all()
        assert numpy.abs(logdet).max() <= 2 + 1e-6  # s = tanh(s_raw): |logdet| <= Db = 2
        x_back, logdet_inv = layer.inverse(z)
        tol = 1e-4 if dtype == F32 else 1e-10
        assert numpy.abs(x_back - x).max() <= tol * numpy.abs(z).max()
        numpy.testing.assert_allclose(to_numpy(logdet_inv), -to_numpy(logdet), atol=1e-6)


@pytest.mark.parametrize("s_raw", [1e6, -1e6, 1e30])
def test_affine_coupling_saturated_log_scale_has_exact_logdet_and_finite_gradients(s_raw):
    layer = _randomize(AffineCoupling(4, half_mask(4), hidden=(8,), dtype=F32, rng=make_rng(0)))
    layer.net.params["linear1.W"][...] = 0.0
    layer.net.params["linear1.b"][...] = to_device(numpy.array([s_raw, s_raw, 0.5, -0.5]))  # s_raw for both x_b, then t
    x = numpy.random.default_rng(2).standard_normal((5, 4)).astype(F32)
    z, logdet = layer.forward(to_device(x))
    numpy.testing.assert_array_equal(to_numpy(logdet), numpy.full(5, 2.0 * numpy.sign(s_raw), F32))
    dx = layer.backward(to_device(numpy.ones(z.shape, F32)), to_device(numpy.ones(5, F32)))
    assert numpy.isfinite(dx).all() and all(numpy.isfinite(g).all() for g in layer.grads.values())
    x_back, _ = layer.inverse(z)
    numpy.testing.assert_allclose(to_numpy(x_back), x, rtol=1e-5, atol=1e-5)


def test_realnvp_log_prob_is_finite_far_out_then_minus_infinity_then_a_clear_error():
    model = _randomize(realnvp_2d(n_layers=8), scale=0.3)
    for magnitude in (1e3, 1e9, 1e18):
        assert numpy.isfinite(model.log_prob(to_device((magnitude * _signs(8, 2)).astype(F32)))).all()
    assert (model.log_prob(to_device(numpy.full((3, 2), 1e30, F32))) == -numpy.inf).all()  # below float32's range
    model.flow[0].net.params["linear2.b"][...] = to_device(numpy.array([5.0, 0.0]))  # layer 0: 3e38 * e overflows
    with pytest.raises(NonFiniteError, match=r"layer 0 \(AffineCoupling\): its forward output z is non-finite"):
        model.log_prob(to_device(numpy.full((3, 2), 3e38, F32)))


def test_sampling_at_huge_temperature_is_finite():
    model = _randomize(realnvp_2d(n_layers=8), scale=0.3)
    x = model.sample(64, numpy.random.default_rng(0), temperature=1e30)
    assert numpy.isfinite(x).all() and numpy.abs(x).max() > 1e29


# -- pixels at 0 and at the top level, through the logit ---------------------------------


def test_dequantized_pixels_at_0_and_16_stay_inside_0_1():
    x = numpy.array([[0] * 8 + [16] * 8] * 4000, dtype=numpy.uint8)  # (4000, 16)
    v, _ = dequantize(x, 17, numpy.random.default_rng(0), F32)
    assert v.min() >= 0.0 and v.max() <= 1.0


@pytest.mark.parametrize("dtype", [F32, F64])
def test_logit_at_exactly_0_and_1_is_finite_both_ways(dtype):
    layer = Logit(alpha=0.05)
    v = numpy.array([[0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]], dtype=dtype)
    y, logdet = layer.forward(v)
    assert numpy.isfinite(y).all() and numpy.isfinite(logdet).all()
    numpy.testing.assert_allclose(numpy.abs(y), numpy.log(0.95 / 0.05), rtol=1e-6)
    dv = layer.backward(numpy.ones_like(y), numpy.ones(2, dtype))
    assert numpy.isfinite(dv).all()
    v_back, logdet_inv = layer.inverse(y)
    numpy.testing.assert_allclose(v_back, v, atol=1e-6)
    numpy.testing.assert_allclose(logdet_inv, -logdet, rtol=1e-6)
    # far out on the real line, the inverse saturates instead of overflowing
    v_far, logdet_far = layer.inverse(numpy.array([[-1e4, 1e4, -1e30, 1e30]], dtype=dtype))
    assert numpy.isfinite(v_far).all() and numpy.isfinite(logdet_far).all()
    numpy.testing.assert_allclose(v_far, [[-0.05 / 0.9, 0.95 / 0.9] * 2], rtol=1e-6)


def test_d8_log_prob_of_blank_and_saturated_images_is_finite():
    model = d8(size=4, hidden=4, n_blocks=1)
    _randomize(model, scale=0.1)
    images = numpy.stack([numpy.zeros((1, 4, 4)), numpy.full((1, 4, 4), 16)]).astype(numpy.uint8)
    for u_value in (0.0, 1.0 - 2**-24):  # the ends of the dequantisation noise
        v = to_device(((images + u_value) / 17).astype(F32))
        assert numpy.isfinite(model.log_prob(v)).all()


# -- extreme parameters -------------------------------------------------------------


@pytest.mark.parametrize("smallest", [1e-3, 1e-6])
def test_near_singular_1x1_conv_is_finite_and_invertible(smallest):
    layer = InvertibleLinear.from_matrix(numpy.diag([1.0, smallest, 2.0]), dtype=F32)
    x = numpy.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(F32)
    z, logdet = layer.forward(to_device(x))
    numpy.testing.assert_allclose(to_numpy(logdet), 4 * numpy.log(2 * smallest), rtol=1e-5)  # H * W * log|det W|
    x_back, logdet_inv = layer.inverse(z)
    numpy.testing.assert_allclose(to_numpy(x_back), x, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(to_numpy(logdet_inv), -to_numpy(logdet), rtol=1e-6)
    layer.backward(to_device(numpy.ones(z.shape, F32)), to_device(numpy.ones(4, F32)))
    assert numpy.isfinite(layer.grads["W"]).all()


def test_singular_1x1_conv_is_a_clear_error_not_a_nan():
    layer = InvertibleLinear.from_matrix(numpy.eye(3), dtype=F32)
    layer.params["W"][1] = 0.0  # a zero row: det W = 0
    x = to_device(numpy.ones((2, 3), F32))
    with pytest.raises(FloatingPointError, match="InvertibleLinear: W is singular"):
        layer.inverse(x)
    z, logdet = layer.forward(x)
    assert (logdet == -numpy.inf).all()  # log|det W| = -inf, the exact value
    with pytest.raises(FloatingPointError, match="InvertibleLinearLU"):
        layer.backward(to_device(numpy.ones(z.shape, F32)), to_device(numpy.ones(2, F32)))


@pytest.mark.parametrize("log_s", [-30.0, -10.0, 10.0, 30.0])
def test_lu_1x1_conv_with_extreme_log_scales_is_finite_and_invertible(log_s):
    layer = InvertibleLinearLU(3, dtype=F64, rng=make_rng(0))
    layer.params["log_s"][...] = to_device(numpy.array([log_s, 0.0, 0.0]))
    x = to_device(numpy.random.default_rng(0).standard_normal((4, 3)))
    z, logdet = layer.forward(x)
    numpy.testing.assert_allclose(to_numpy(logdet), log_s, rtol=1e-12)  # sum(log_s), no determinant taken
    x_back, logdet_inv = layer.inverse(z)
    assert numpy.isfinite(z).all() and numpy.isfinite(x_back).all()
    numpy.testing.assert_allclose(to_numpy(logdet_inv), -to_numpy(logdet), rtol=1e-12)
    # W has condition number about e^|log_s|: the round trip keeps 16 - |log_s| / ln 10 digits
    assert numpy.abs(x_back - x).max() <= 1e-14 * numpy.exp(abs(log_s))


@pytest.mark.parametrize(("dtype", "w"), [(F32, 1e-2), (F32, 1e-4), (F64, 1e-4), (F64, 1e-8)])
def test_planar_with_w_near_zero_is_finite_and_invertible(dtype, w):
    layer = Planar(2, dtype=dtype, rng=make_rng(0))
    layer.params["w"][...] = to_device(numpy.array([w, -0.5 * w]))
    layer.params["b"][...] = 0.3
    x = to_device(numpy.random.default_rng(1).standard_normal((5, 2)).astype(dtype))
    z, logdet = layer.forward(x)
    assert numpy.isfinite(z).all() and numpy.isfinite(logdet).all()
    x_back, logdet_inv = layer.inverse(z)
    # u_hat grows like 1/|w|, so z does too: the round trip is accurate relative to |z|
    tol = 1e-5 if dtype == F32 else 1e-12
    assert numpy.abs(x_back - x).max() <= tol * (1 + numpy.abs(z).max())
    numpy.testing.assert_allclose(to_numpy(logdet_inv), -to_numpy(logdet), atol=1e-6)


def test_planar_with_w_exactly_zero_is_a_clear_error_at_the_model_boundary():
    model = planar_2d(n_layers=3)
    model.flow[1].params["w"][...] = 0.0  # u_hat = u + (m - w.u) w / |w|^2 is 0 / 0
    with pytest.raises(NonFiniteError, match=r"layer 1 \(Planar\): its inverse output x is non-finite"):
        model.sample(8, numpy.random.default_rng(0))
    with pytest.raises(NonFiniteError, match=r"layer 1 \(Planar\)"):
        model.sample_and_log_prob(8, numpy.random.default_rng(0))
    # the density pass: layer 1 gives NaN, so layer 2's solver cannot converge; the error names layer 1
    with pytest.raises(NonFiniteError, match=r"PlanarInverseError.*layer 1 \(Planar\): its forward output z"):
        model.log_prob(to_device(numpy.zeros((2, 2), F32)))


@pytest.mark.parametrize(("alpha_raw", "beta_raw"), [(30.0, -30.0), (-30.0, -30.0), (30.0, 30.0), (-30.0, 30.0)])
def test_radial_with_extreme_alpha_and_beta_is_finite(alpha_raw, beta_raw):
    layer = Radial(2, dtype=F64, rng=make_rng(0))
    layer.params["alpha_raw"][...] = alpha_raw
    layer.params["beta_raw"][...] = beta_raw
    x = numpy.random.default_rng(1).standard_normal((6, 2))
    z, logdet = layer.forward(to_device(x))
    x_back, logdet_inv = layer.inverse(z)
    assert numpy.isfinite(z).all() and numpy.isfinite(logdet).all() and numpy.isfinite(x_back).all()
    dx = layer.backward(to_device(numpy.ones(z.shape)), to_device(numpy.ones(6)))
    assert numpy.isfinite(dx).all() and all(numpy.isfinite(g).all() for g in layer.grads.values())
    if (alpha_raw, beta_raw) != (-30.0, 30.0):
        numpy.testing.assert_allclose(to_numpy(x_back), x, atol=1e-10)
        numpy.testing.assert_allclose(to_numpy(logdet_inv), -to_numpy(logdet), atol=1e-10)
    # alpha ~ 1e-13 with beta ~ 30 squeezes the whole ball |x - z0| < 30 into |z - z0| < 1e-12:
    # finite, but z carries too few digits to recover x to more than a few places


def test_actnorm_initialised_on_a_constant_channel_is_finite():
    layer = ActNorm(3)
    x = numpy.random.default_rng(0).standard_normal((16, 3)).astype(F32)
    x[:, 1] = 7.0  # zero variance: eps keeps the scale finite
    z, logdet = layer.forward(to_device(x))
    assert numpy.isfinite(z).all() and numpy.isfinite(logdet).all()
    numpy.testing.assert_allclose(to_numpy(layer.inverse(z)[0]), x, rtol=1e-4)


# -- data and targets far out -----------------------------------------------------------


@pytest.mark.parametrize("name", ENERGY_TARGETS)
@pytest.mark.parametrize("dtype", [F32, F64])
def test_energy_targets_and_their_gradients_are_finite_far_out(name, dtype):
    target = get_energy(name)
    z = numpy.array([[50.0, 0.0], [-1e3, 1e3], [0.0, 1e6], [1e6, -1e6], [3.5, 1e-30]], dtype=dtype)
    assert numpy.isfinite(target.energy(z)).all() and numpy.isfinite(target.grad(z)).all()


@pytest.mark.parametrize("name", [n for n, d in TOY_DENSITIES.items() if d.has_log_prob])
def test_toy_log_densities_far_out_are_never_nan(name):
    x = numpy.array([[50.0, 50.0], [1e3, -1e3], [1e6, 0.0], [0.3, -0.2]])
    out = TOY_DENSITIES[name].log_prob(x)
    assert not numpy.isnan(out).any()
    assert (out < 0).all() or name == "rings"  # far out: tiny densities (rings is +inf at r = 0 only)
    if name != "checkerboard":  # the checkerboard is exactly 0 (log -inf) off its squares
        assert numpy.isfinite(out).all()
