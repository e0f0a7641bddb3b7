"""Tests for minflow/flows/invertible_linear.py: Glow's invertible linear map / 1x1 convolution, plain and LU.

Layers without ``.to(xp)`` live on the default backend (MINFLOW_BACKEND): their
inputs go there with ``to_device`` and their results come back with ``to_numpy``.
"""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks

from minflow.backend import make_rng, to_device, to_numpy
from minflow.flows.invertible_linear import InvertibleLinear, InvertibleLinearLU, random_rotation

SHAPES = {"vectors": (6, 4), "images": (3, 4, 2, 3)}
FORMS = {"plain": InvertibleLinear, "lu": InvertibleLinearLU}


def batch(kind, seed=0):
    return numpy.random.default_rng(seed).standard_normal(SHAPES[kind])


def general_matrix(seed=3):
    """A 4x4 invertible matrix that is not orthogonal and whose LU needs pivoting."""
    rng = numpy.random.default_rng(seed)
    m = rng.standard_normal((4, 4)) + numpy.diag([0.1, 0.5, -1.5, 2.0])
    m[0, 0] = 0.05  # forces a row exchange in the LU decomposition
    return m


def randomized_layer(form, dtype=numpy.float64, seed=1):
    """A layer with every parameter moved off its rotation init."""
    layer = FORMS[form](4, dtype=dtype, rng=make_rng(seed))
    rng = numpy.random.default_rng(seed)
    for p in layer.params.values():
        p += to_device(0.3 * rng.standard_normal(p.shape), dtype=dtype)
    return layer


def test_random_rotation_is_orthogonal_with_det_one():
    q = to_numpy(random_rotation(5, make_rng(2)))
    numpy.testing.assert_allclose(q.T @ q, numpy.eye(5), atol=1e-12)
    assert numpy.linalg.det(q) == pytest.approx(1.0, abs=1e-12)
    assert not numpy.allclose(q, to_numpy(random_rotation(5, make_rng(3))))


@pytest.mark.parametrize("form", FORMS)
def test_invertible_linear_starts_as_rotation_with_zero_logdet(form):
    layer = FORMS[form](4, dtype=numpy.float64, rng=make_rng(0))
    w = to_numpy(layer.matrix())
    numpy.testing.assert_allclose(w.T @ w, numpy.eye(4), atol=1e-12)
    _, logdet = layer.forward(to_device(batch("images")))
    numpy.testing.assert_allclose(to_numpy(logdet), 0.0, atol=1e-12)


@pytest.mark.parametrize("kind", SHAPES)
@pytest.mark.parametrize("form", FORMS)
def test_invertible_linear_passes_all_checks(form, kind, xp):
    """Gradients (input and W, or L, U, log_s; both directions), log-det vs Jacobian, round trips, dtypes."""

    def make(dtype):
        return randomized_layer(form, dtype)

    report = assert_layer_passes_all_checks(make, batch(kind), xp)
    assert len(report.rows) >= 2 * (1 + len(make(numpy.float64).params))


@pytest.mark.parametrize("kind", SHAPES)
def test_invertible_linear_is_a_1x1_convolution(kind):
    x = batch(kind)
    layer = InvertibleLinear.from_matrix(general_matrix(), dtype=numpy.float64)
    z, logdet = layer.forward(to_device(x))
    expected = numpy.einsum("ij,nj...->ni...", general_matrix(), x)
    numpy.testing.assert_allclose(to_numpy(z), expected, rtol=1e-13, atol=1e-13)
    pixels = int(numpy.prod(x.shape[2:]))
    expected_logdet = pixels * numpy.log(abs(numpy.linalg.det(general_matrix())))
    numpy.testing.assert_allclose(to_numpy(logdet), expected_logdet, rtol=1e-12)


@pytest.mark.parametrize("kind", SHAPES)
def test_lu_and_plain_forms_agree_from_the_same_matrix(kind):
    x = to_device(batch(kind))
    plain = InvertibleLinear.from_matrix(general_matrix(), dtype=numpy.float64)
    lu = InvertibleLinearLU.from_matrix(general_matrix(), dtype=numpy.float64)
    assert not numpy.allclose(to_numpy(lu.P), numpy.eye(4))  # the pivoting path is exercised
    numpy.testing.assert_allclose(to_numpy(lu.matrix()), general_matrix(), atol=1e-12)
    z_plain, ld_plain = plain.forward(x)
    z_lu, ld_lu = lu.forward(x)
    assert numpy.max(numpy.abs(to_numpy(z_plain - z_lu))) < 1e-10
    assert numpy.max(numpy.abs(to_numpy(ld_plain - ld_lu))) < 1e-10
    x_plain, ild_plain = plain.inverse(z_plain)
    x_lu, ild_lu = lu.inverse(z_plain)
    assert numpy.max(numpy.abs(to_numpy(x_plain - x_lu))) < 1e-10
    assert numpy.max(numpy.abs(to_numpy(ild_plain - ild_lu))) < 1e-10


def test_plain_logdet_gradient_is_inverse_transpose():
    x = to_device(batch("vectors"))
    layer = InvertibleLinear.from_matrix(general_matrix(), dtype=numpy.float64)
    layer.forward(x)
    layer.backward(to_device(numpy.zeros(x.shape)), to_device(numpy.ones(x.shape[0])))  # L = sum_n log|det W|
    expected = x.shape[0] * numpy.linalg.inv(general_matrix()).T
    numpy.testing.assert_allclose(to_numpy(layer.grads["W"]), expected, rtol=1e-12)


def test_lu_gradients_are_strictly_triangular():
    x = to_device(batch("images"))
    layer = randomized_layer("lu")
    rng = numpy.random.default_rng(4)
    z, logdet = layer.forward(x)
    layer.backward(to_device(rng.standard_normal(z.shape)), to_device(rng.standard_normal(logdet.shape)))
    grads = {name: to_numpy(g) for name, g in layer.grads.items()}
    assert numpy.all(numpy.triu(grads["L"]) == 0) and numpy.any(numpy.tril(grads["L"], -1) != 0)
    assert numpy.all(numpy.tril(grads["U"]) == 0) and numpy.any(numpy.triu(grads["U"], 1) != 0)


def test_lu_logdet_is_pixels_times_sum_of_log_s():
    x = to_device(batch("images"))
    layer = randomized_layer("lu")
    _, logdet = layer.forward(x)
    logdet = to_numpy(logdet)
    numpy.testing.assert_allclose(logdet, 6 * to_numpy(layer.params["log_s"]).sum(), rtol=1e-14)
    numpy.testing.assert_allclose(logdet, 6 * numpy.linalg.slogdet(to_numpy(layer.matrix()))[1], rtol=1e-12)


@pytest.mark.parametrize("form", FORMS)
def test_invertible_linear_float32_keeps_dtype_and_logdet_from_float64(form):
    x = batch("images").astype(numpy.float32)
    layer = FORMS[form].from_matrix(general_matrix(), dtype=numpy.float32)
    z, logdet = layer.forward(to_device(x))
    assert z.dtype == numpy.float32 and logdet.dtype == numpy.float32
    assert layer.matrix().dtype == numpy.float64
    numpy.testing.assert_allclose(to_numpy(logdet), 6 * numpy.linalg.slogdet(to_numpy(layer.matrix()))[1], rtol=1e-6)
    x_back, _ = layer.inverse(z)
    assert x_back.dtype == numpy.float32
    numpy.testing.assert_allclose(to_numpy(x_back), x, atol=1e-4)


@pytest.mark.parametrize("form", FORMS)
def test_invertible_linear_rejects_wrong_shape_and_singular_matrix(form):
    layer = FORMS[form](4, rng=make_rng(0))
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 4\)"):
        layer.forward(numpy.zeros((2, 3, 4, 4), dtype=numpy.float32))
    with pytest.raises(ValueError, match="singular"):
        FORMS[form].from_matrix(numpy.ones((3, 3)))
    with pytest.raises(ValueError, match="square"):
        FORMS[form].from_matrix(numpy.ones((3, 2)))
