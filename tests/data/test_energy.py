"""Tests for minflow/data/energy.py: the energy targets U1..U4 of docs/reference-problems.md section 2.

The analytic gradients agree with central differences; ln Z by quadrature and
KL(N(0, I) || p_k) (by quadrature and by the Monte Carlo estimator) reproduce
the reference values of section 4.
"""

import math

import numpy
import pytest

from minflow.backend import to_device
from minflow.data import energy
from minflow.data.energy import ENERGY_TARGETS, LOG_Z, get_energy, quadrature_log_z, reverse_kl, reverse_kl_from_samples
from minflow.gradcheck import numerical_gradient, relative_error
from minflow.zoo import realnvp_2d

# docs/reference-problems.md section 4: KL(N(0, I) || p_k), the untrained base against each target
KL_BASE = {"U1": 4.5792, "U2": 3.8249, "U3": 3.5961, "U4": 3.1725}


def test_energy_reference_log_z_values():
    assert LOG_Z == {"U1": 1.87750, "U2": 1.98374, "U3": 2.54336, "U4": 2.61235}
    assert all(get_energy(name).log_z == LOG_Z[name] for name in ENERGY_TARGETS)


@pytest.mark.parametrize("name", ENERGY_TARGETS)
def test_energy_gradient_matches_finite_differences(name, xp, rng):
    z = 2.5 * rng.standard_normal((60, 2))
    z[:6, 0] = rng.uniform(3.6, 5.0, 6) * numpy.array([1, -1, 1, -1, 1, -1])  # beyond the wall
    z[6] = [0.3, 1e-3]  # near the origin, where |z| bends (U1)
    z = to_device(z, xp, numpy.float64)
    target = get_energy(name)
    analytic = target.grad(z)
    assert analytic.shape == (60, 2) and analytic.dtype == numpy.float64
    numeric = numerical_gradient(lambda: float(target.energy(z).sum()), z, h=1e-5)
    assert relative_error(analytic, numeric) < 1e-6


@pytest.mark.parametrize("name", ENERGY_TARGETS)
def test_energy_quadrature_log_z_matches_reference(name):
    # midpoint rule on 300 x 300 cells of [-6, 6]^2; agrees with 1200 x 1200 to 1e-6
    assert abs(quadrature_log_z(name, n=300) - LOG_Z[name]) < 1e-4


@pytest.mark.parametrize("name", ENERGY_TARGETS)
def test_energy_kl_of_standard_normal_by_quadrature(name):
    # KL(q || p) = int q (log q + U + wall) + ln Z with q = N(0, I), on a grid: exact to 1e-4
    z, h = energy._grid(600, 6.0)
    log_q = -0.5 * (z * z).sum(axis=1) - math.log(2 * math.pi)
    kl = (numpy.exp(log_q) * (log_q + get_energy(name).energy(z))).sum() * h * h + LOG_Z[name]
    assert abs(kl - KL_BASE[name]) < 1e-4


@pytest.mark.parametrize("name", ENERGY_TARGETS)
def test_energy_monte_carlo_kl_of_standard_normal(name):
    rng = numpy.random.default_rng(7)
    z = rng.standard_normal((10**5, 2))
    log_q = -0.5 * (z * z).sum(axis=1) - math.log(2 * math.pi)
    kl, stderr = reverse_kl_from_samples(z, log_q, get_energy(name))
    assert 0.005 < stderr < 0.05
    assert abs(kl - KL_BASE[name]) < 4 * stderr


def test_energy_reverse_kl_of_a_model_leaves_it_alone():
    model = realnvp_2d()  # starts as the identity: q = N(0, I)
    before = {k: v.copy() for k, v in model.params.items()}
    kl, stderr = reverse_kl(model, get_energy("U1"), n_samples=20_000, seed=3)
    assert abs(kl - KL_BASE["U1"]) < 4 * stderr
    assert all(v.dtype == numpy.float32 and numpy.array_equal(v, before[k]) for k, v in model.params.items())


@pytest.mark.parametrize("name", ENERGY_TARGETS)
def test_energy_log_prob_integrates_to_one(name):
    log_p, h = energy.grid_log_density(get_energy(name).log_prob, n=300, box=6.0)
    assert abs(numpy.exp(log_p).sum() * h * h - 1) < 1e-4


def test_energy_values_by_hand():
    z = numpy.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5]])
    # U1 at (2, 0): ring term 0, -ln(exp(0) + exp(-0.5 (4 / 0.6)^2))
    assert get_energy("U1").energy(z)[0] == pytest.approx(-math.log(1 + math.exp(-0.5 * (4 / 0.6) ** 2)), rel=1e-12)
    # U2 at (0, 1): w1 = 0, 0.5 (1 / 0.4)^2
    assert get_energy("U2").energy(z)[1] == pytest.approx(0.5 / 0.16, rel=1e-12)
    # U3 at (1, 0.5): w1 = 1, w2 = 3
    a, b = -0.5 * (-0.5 / 0.35) ** 2, -0.5 * (2.5 / 0.35) ** 2
    assert get_energy("U3").energy(z)[2] == pytest.approx(-math.log(math.exp(a) + math.exp(b)), rel=1e-12)
    # U4 at (1, 0.5): w1 = 1, w3 = 1.5
    a, b = -0.5 * (-0.5 / 0.4) ** 2, -0.5 * (1.0 / 0.35) ** 2
    assert get_energy("U4").energy(z)[2] == pytest.approx(-math.log(math.exp(a) + math.exp(b)), rel=1e-12)


def test_energy_wall_confines_z1():
    target = get_energy("U2")  # periodic in z1 without the wall
    inside, outside = numpy.array([[2.0, 0.0]]), numpy.array([[6.0, 0.0], [-6.0, 0.0]])
    numpy.testing.assert_allclose(target.energy(outside) - target.energy(inside), 50 * 2.5**2, rtol=1e-12)
    numpy.testing.assert_allclose(target.grad(outside)[:, 0], [250.0, -250.0], rtol=1e-12)


def test_energy_keeps_float32():
    z = numpy.ones((3, 2), numpy.float32)
    for name in ENERGY_TARGETS:
        target = get_energy(name)
        assert target.energy(z).dtype == target.grad(z).dtype == numpy.float32


def test_energy_rejects_unknown_name_and_bad_shape():
    with pytest.raises(ValueError, match="Unknown energy target 'U5'"):
        get_energy("U5")
    with pytest.raises(ValueError, match=r"expects z of shape \(N, 2\); got \(3,\)"):
        get_energy("U1").energy(numpy.zeros(3))
