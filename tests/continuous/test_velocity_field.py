"""Tests for minflow/continuous/velocity_field.py and time_embedding.py: gradients and the exact divergence."""

import numpy
import pytest
from helpers import assert_block_passes_all_checks, randomize_params

from minflow.backend import get_array_module, make_rng, to_device, to_numpy
from minflow.continuous import VelocityField, time_features
from minflow.nn import Module


class AtFixedTimes(Module):
    """x -> v(x, t) with fixed per-row times: a building block the shared checks can feed."""

    def __init__(self, velocity, t):
        super().__init__()
        self.velocity = self.add_child("velocity", velocity)
        self.t = t

    def forward(self, x):
        return self.velocity.forward(x, to_device(self.t, get_array_module(x), x.dtype))

    def backward(self, dv):
        return self.velocity.backward(dv)


def make_field(dim=2, hidden=(8, 7)):
    def make(dtype):
        field = VelocityField(
            dim, hidden=hidden, n_frequencies=3, n_fourier=4, fourier_scale=1.5, dtype=dtype, rng=make_rng(0)
        )
        return randomize_params(field, numpy.random.default_rng(0))

    return make


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_velocity_field_gradcheck_input_and_every_parameter(dim, xp, rng):
    t = rng.uniform(0, 1, size=6)
    make = make_field(dim)
    report = assert_block_passes_all_checks(
        lambda dtype: AtFixedTimes(make(dtype), t), rng.standard_normal((6, dim)), xp
    )
    assert len(report.rows) == 1 + 6  # the input and the W, b of three Linear layers


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_velocity_field_divergence_matches_finite_differences(dim, xp, rng):
    field = make_field(dim, hidden=(16, 16, 16))(numpy.float64).to(xp)
    x = to_device(1.5 * rng.standard_normal((7, dim)), xp)
    t = to_device(rng.uniform(0, 1, size=7), xp)
    v, div = field.divergence(x, t)
    numpy.testing.assert_allclose(to_numpy(v), to_numpy(field.forward(x, t)), rtol=1e-13, atol=1e-13)
    h = 1e-5
    trace = 0.0
    for j in range(dim):
        e = xp.zeros(dim)
        e[j] = h
        trace = trace + (field.forward(x + e, t)[:, j] - field.forward(x - e, t)[:, j]) / (2 * h)  # dv_j/dx_j
    error = numpy.abs(to_numpy(div - trace)).max()
    assert error < 1e-6, f"divergence differs from central differences by {error:.2e}"
    assert numpy.abs(to_numpy(div)).min() > 1e-3  # a real number was checked, not zeros


def test_velocity_field_divergence_with_one_time_for_all_rows(rng):
    field = make_field()(numpy.float64)
    x = rng.standard_normal((5, 2))
    v, div = field.divergence(x, 0.3)
    v_rows, div_rows = field.divergence(x, numpy.full(5, 0.3))
    numpy.testing.assert_array_equal(v, v_rows)
    numpy.testing.assert_array_equal(div, div_rows)


def test_velocity_field_divergence_leaves_the_training_caches_alone(rng):
    field = make_field()(numpy.float64)
    x, t = rng.standard_normal((4, 2)), rng.uniform(size=4)
    dv = rng.standard_normal((4, 2))
    field.forward(x, t)
    dx_expected = field.backward(dv)
    field.zero_grads()
    field.forward(x, t)
    field.divergence(rng.standard_normal((9, 2)), 0.5)  # between a forward and its backward
    numpy.testing.assert_array_equal(field.backward(dv), dx_expected)


def test_velocity_field_default_size_fits_the_35000_parameter_budget():
    field = VelocityField(2, rng=make_rng(0))
    assert field.num_params() == 34_442  # (42*120 + 120) + 2 * (120*120 + 120) + (120*2 + 2)
    assert list(field.buffers()) == ["B"] and field.B.shape == (2, 16)  # fixed, not counted


def test_velocity_field_without_fourier_features_is_an_mlp_of_x_and_phi(rng):
    field = randomize_params(
        VelocityField(2, hidden=(5,), n_frequencies=2, n_fourier=0, dtype=numpy.float64, rng=make_rng(0)), rng
    )
    x, t = rng.standard_normal((4, 2)), rng.uniform(size=4)
    p = field.params
    h = numpy.concatenate([x, time_features(t, 2, x)], axis=1)
    a = h @ p["net.linear0.W"] + p["net.linear0.b"]
    expected = (a / (1 + numpy.exp(-a))) @ p["net.linear1.W"] + p["net.linear1.b"]
    numpy.testing.assert_allclose(field.forward(x, t), expected, rtol=1e-12)


def test_velocity_field_keeps_float32(rng):
    field = VelocityField(2, hidden=(8,), rng=make_rng(0))
    x = rng.standard_normal((3, 2)).astype(numpy.float32)
    v, div = field.divergence(x, numpy.float32(0.5))
    assert v.dtype == div.dtype == field.forward(x, 0.5).dtype == numpy.float32
    assert field.backward(numpy.ones_like(x)).dtype == numpy.float32


def test_time_features_tell_the_two_ends_apart():
    x = numpy.zeros((3, 2))
    phi = time_features(numpy.array([0.0, 1.0, 0.5]), 4, x)
    assert phi.shape == (3, 8)
    numpy.testing.assert_allclose(phi[0], [0, 1] * 4, atol=1e-15)  # sin 0, cos 0
    assert numpy.abs(phi[0] - phi[1]).max() > 1.9  # cos(pi t) goes from 1 to -1
    numpy.testing.assert_allclose(phi[2, :2], [1.0, 0.0], atol=1e-15)  # sin(pi/2), cos(pi/2)


def test_velocity_field_rejects_wrong_shapes(rng):
    field = VelocityField(2, hidden=(4,), rng=make_rng(0))
    with pytest.raises(ValueError, match=r"x of shape \(N, 2\)"):
        field.forward(rng.standard_normal((3, 3)), 0.5)
    with pytest.raises(ValueError, match="one time per row"):
        field.forward(rng.standard_normal((3, 2)), numpy.zeros(4))
    with pytest.raises(ValueError, match="features must be an integer >= 1"):
        VelocityField(0, rng=make_rng(0))
    with pytest.raises(ValueError, match="n_fourier must be an integer >= 0"):
        VelocityField(2, n_fourier=-1, rng=make_rng(0))
