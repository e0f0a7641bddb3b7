"""Tests for minflow/continuous/ode.py: the orders of Euler and RK4 on a field with a known solution."""

import numpy
import pytest

from minflow.continuous import odeint

# dy/dt = A y, a rotation with decay: y(t) = exp(-t/2) R(t) y0, R the rotation by angle t.
A = numpy.array([[-0.5, -1.0], [1.0, -0.5]])


def linear_field(t, y):
    return (y[0] @ A.T,)


def exact(y0, t):
    c, s = numpy.cos(t), numpy.sin(t)
    return numpy.exp(-0.5 * t) * (y0 @ numpy.array([[c, -s], [s, c]]).T)


def global_error(method, n_steps, t1=2.0):
    y0 = numpy.array([[1.0, 0.5], [-0.3, 2.0]])
    (y,) = odeint(linear_field, (y0,), 0.0, t1, n_steps, method)
    return numpy.abs(y - exact(y0, t1)).max()


@pytest.mark.parametrize(("method", "order"), [("rk4", 4), ("euler", 1)])
def test_error_falls_by_2_to_the_order_when_steps_double(method, order):
    errors = [global_error(method, n) for n in (10, 20, 40, 80)]
    ratios = [a / b for a, b in zip(errors, errors[1:])]
    # RK4: ratios near 16; Euler: near 2
    numpy.testing.assert_allclose(ratios, 2.0**order, rtol=0.15), (errors, ratios)
    assert errors[-1] < (1e-7 if method == "rk4" else 1e-1)


def test_backwards_in_time_undoes_forwards():
    y0 = numpy.array([[1.0, 0.5]])
    (y1,) = odeint(linear_field, (y0,), 0.0, 1.5, 200)
    (back,) = odeint(linear_field, (y1,), 1.5, 0.0, 200)
    numpy.testing.assert_allclose(back, y0, atol=1e-10)


def test_callback_sees_every_grid_time():
    seen = []
    odeint(linear_field, (numpy.ones((1, 2)),), 1.0, 0.0, 4, callback=lambda t, y: seen.append(t))
    numpy.testing.assert_allclose(seen, [1.0, 0.75, 0.5, 0.25, 0.0])


def test_odeint_rejects_bad_arguments():
    with pytest.raises(ValueError, match="method must be one of"):
        odeint(linear_field, (numpy.ones((1, 2)),), 0.0, 1.0, 4, method="rk45")
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        odeint(linear_field, (numpy.ones((1, 2)),), 0.0, 1.0, 0)
