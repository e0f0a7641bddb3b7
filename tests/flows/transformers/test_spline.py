"""The rational-quadratic spline transformer: gradients (input and every raw parameter, both directions),
log-dets, round trips, monotonicity, the identity at zero parameters, and points near knots, in the tails
and on the boundary."""

import numpy
import pytest
from helpers import TransformerLayer, assert_layer_passes_all_checks

from minflow.flows.transformers import RationalQuadraticSpline
from minflow.flows.transformers.spline import MIN_DERIVATIVE

F64 = numpy.float64
K, B = 5, 2.0


def _layer(x_shape, seed=0, scale=0.5):
    spline = RationalQuadraticSpline(n_bins=K, bound=B)
    rng = numpy.random.default_rng(seed)

    def make(dtype):
        params = (scale * rng.standard_normal((x_shape[0], spline.n_params, *x_shape[1:]))).astype(dtype)
        rng.bit_generator.state = numpy.random.default_rng(seed).bit_generator.state  # same draws each call
        return TransformerLayer(RationalQuadraticSpline(n_bins=K, bound=B), params)

    return spline, make


def _knots_of(layer):
    """The x-knots and y-knots (N, K+1, ...) of a layer's spline: rows 0 and 1 of its table."""
    table, _ = layer.transformer._spline(layer.params["params"])
    return table[:, 0], table[:, 1]


@pytest.mark.parametrize("shape", [(6, 3), (2, 2, 3, 3)])
def test_spline_passes_all_checks_inside_the_interval(shape, xp):
    _, make = _layer(shape)
    x = numpy.random.default_rng(1).uniform(-0.9 * B, 0.9 * B, size=shape)
    assert_layer_passes_all_checks(make, x, xp)


def test_spline_passes_all_checks_in_the_tails_and_on_both_sides_of_the_boundary():
    _, make = _layer((8, 1))
    x = numpy.array([-5.0, -B - 1e-3, -B + 1e-3, -B / 3, B / 4, B - 1e-3, B + 1e-3, 7.0])[:, None]
    assert_layer_passes_all_checks(make, x)


def test_spline_passes_all_checks_near_every_knot():
    n = 4 * (K - 1)
    _, make = _layer((n, 1), seed=3)
    layer = make(F64)
    xk, _ = _knots_of(layer)
    rows = numpy.arange(n)
    knots = xk[rows, 1 + rows % (K - 1), 0]  # an inner knot of each row's own spline
    offset = numpy.where(rows % 2 == 0, 1e-4, -1e-4)  # just above or below it (h = 1e-5 stays on one side)
    assert_layer_passes_all_checks(make, (knots + offset)[:, None])


def test_spline_parameter_gradients_at_the_knots_and_the_boundary_exactly():
    # y is C1 in x and in the knots, so dL/dy-only gradients hold exactly at knots and at +-B; it is not C2
    # there, so central differences straddling a knot err by O(h): the bound is 1e-5 rather than 1e-6
    from minflow.gradcheck import numerical_gradient, relative_error

    n = K + 1
    _, make = _layer((n, 1), seed=4)
    layer = make(F64)
    xk, _ = _knots_of(layer)
    x = xk[numpy.arange(n), numpy.arange(n), 0][:, None].copy()  # x = knot k for row k, both ends included
    dy = numpy.random.default_rng(5).standard_normal(x.shape)
    layer.zero_grads()
    layer.forward(x)
    dx = layer.backward(dy, numpy.zeros(n))

    def loss():
        return float((layer.forward(x)[0] * dy).sum())

    assert relative_error(layer.grads["params"], numerical_gradient(loss, layer.params["params"])) < 1e-5
    assert relative_error(dx, numerical_gradient(loss, x)) < 1e-5


def test_spline_is_the_identity_at_zero_parameters():
    spline = RationalQuadraticSpline(n_bins=K, bound=B)
    x = numpy.linspace(-2 * B, 2 * B, 41)[:, None]
    y, logdet = spline.forward(x, numpy.zeros((41, spline.n_params, 1)))
    numpy.testing.assert_allclose(y, x, atol=1e-14)
    numpy.testing.assert_allclose(logdet, 0, atol=1e-13)
    assert abs(MIN_DERIVATIVE + numpy.log1p(numpy.exp(numpy.log(numpy.expm1(1 - MIN_DERIVATIVE)))) - 1) < 1e-15


def test_spline_is_monotone_continuous_and_meets_the_tails():
    spline = RationalQuadraticSpline(n_bins=K, bound=B)
    x = numpy.linspace(-1.5 * B, 1.5 * B, 20001)[:, None]
    params = numpy.broadcast_to(
        numpy.random.default_rng(6).standard_normal((1, spline.n_params, 1)), (len(x), spline.n_params, 1)
    )
    params = numpy.ascontiguousarray(params)
    y, logdet = spline.forward(x, params)
    assert numpy.all(numpy.diff(y[:, 0]) > 0)
    h = 1e-7  # the slope by central differences at every grid point (bins can be steep and narrow)
    slope = (spline.forward(x + h, params)[0] - spline.forward(x - h, params)[0]) / (2 * h)
    assert numpy.max(numpy.abs(numpy.log(slope) - logdet)) < 1e-5
    outside = numpy.abs(x[:, 0]) > B
    numpy.testing.assert_array_equal(y[outside], x[outside])


def test_spline_inverse_round_trip_to_1e10_with_sharp_bins():
    spline = RationalQuadraticSpline(n_bins=K, bound=B)
    rng = numpy.random.default_rng(7)
    x = rng.uniform(-1.2 * B, 1.2 * B, size=(500, 2))
    params = 2 * rng.standard_normal((500, spline.n_params, 2))  # uneven bins: slopes down to exp(-12)
    y, logdet = spline.forward(x, params)
    x_back, logdet_back = spline.inverse(y, params)
    assert numpy.max(numpy.abs(x_back - x)) < 1e-10
    assert numpy.max(numpy.abs(logdet + logdet_back)) < 1e-10


def test_spline_rejects_params_of_the_wrong_shape():
    spline = RationalQuadraticSpline(n_bins=K, bound=B)
    with pytest.raises(ValueError, match=r"expects params of shape \(N, P, \*S\) = \(3, 14, 2\)"):
        spline.forward(numpy.zeros((3, 2)), numpy.zeros((3, 2, 2)))


@pytest.mark.parametrize("n_bins", [1, 2, 3, 5, 8, 12, 16])
@pytest.mark.parametrize("dtype", [numpy.float32, F64])
def test_spline_reductions_over_the_bins_equal_numpy_bit_for_bit(n_bins, dtype):
    from minflow.flows.transformers.spline import _max_bins, _reduce_bins

    for shape in [(7, n_bins, 2), (3, n_bins, 2, 4)]:
        u = numpy.random.default_rng(n_bins).standard_normal(shape).astype(dtype)
        numpy.testing.assert_array_equal(_max_bins(u), u.max(axis=1, keepdims=True))
        numpy.testing.assert_array_equal(_reduce_bins(numpy.add, u), u.sum(axis=1, keepdims=True))
        numpy.testing.assert_array_equal(_reduce_bins(numpy.maximum, u), u.max(axis=1, keepdims=True))
