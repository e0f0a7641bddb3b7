"""Tests for minflow/gradcheck.py: the checker must fail on wrong code, not only pass on right code."""

import numpy
import pytest

from minflow.backend import get_array_module, make_rng, to_device
from minflow.flows import Bijection
from minflow.gradcheck import (
    brute_force_logdet,
    check_gradients,
    check_logdet,
    check_module_gradients,
    check_roundtrip,
    gradcheck,
    relative_error,
    taylor_test,
)
from minflow.nn import Linear

BUGS = (None, "input", "param", "logdet", "inverse")


class SinhScale(Bijection):
    """Test layer z = exp(a) * sinh(x) + b, elementwise over (N, D), with an optional planted bug.

    log|det dz/dx| = sum_j [a_j + log cosh(x_j)]; inverse x = arcsinh(u),
    u = (z - b) exp(-a), log|det dx/dz| = -sum_j [a_j + 0.5 log(1 + u_j^2)].

    Args:
        a, b: (D,) parameters.
        bug: None (correct), "input" (dx misses the log-det term), "param"
            (da misses the log-det term), "logdet" (log-dets forget the
            log cosh term, backward consistent with that), "inverse"
            (the inverse is off by 1e-3).
    """

    def __init__(self, a, b, bug=None):
        super().__init__()
        assert bug in BUGS
        self.bug = bug
        self.add_param("a", a)
        self.add_param("b", b)

    def _bent(self):
        return 0.0 if self.bug == "logdet" else 1.0

    def forward(self, x):
        xp = get_array_module(x)
        a, b = self._own_params["a"], self._own_params["b"]
        self._save_cache("forward", x)
        logdet = (a + self._bent() * xp.log(xp.cosh(x))).sum(axis=1)
        return xp.exp(a) * xp.sinh(x) + b, logdet

    def inverse(self, z):
        xp = get_array_module(z)
        a, b = self._own_params["a"], self._own_params["b"]
        u = (z - b) * xp.exp(-a)
        self._save_cache("inverse", u)
        x = xp.arcsinh(u) + (1e-3 if self.bug == "inverse" else 0.0)
        return x, -(a + self._bent() * 0.5 * xp.log1p(u * u)).sum(axis=1)

    def backward(self, dz, dlogdet):
        xp = get_array_module(dz)
        x = self._take_cache("forward", "backward")
        a = self._own_params["a"]
        self._own_grads["b"] += dz.sum(axis=0)
        da = dz * xp.exp(a) * xp.sinh(x)
        if self.bug != "param":
            da = da + dlogdet[:, None]
        self._own_grads["a"] += da.sum(axis=0)
        dx = dz * xp.exp(a) * xp.cosh(x)
        if self.bug != "input":
            dx = dx + self._bent() * dlogdet[:, None] * xp.tanh(x)
        return dx

    def inverse_backward(self, dx, dlogdet):
        xp = get_array_module(dx)
        u = self._take_cache("inverse", "inverse_backward")
        a = self._own_params["a"]
        du = dx / xp.sqrt(1 + u * u) - self._bent() * dlogdet[:, None] * u / (1 + u * u)
        self._own_grads["a"] += (-du * u).sum(axis=0) - dlogdet.sum()
        self._own_grads["b"] += -(du * xp.exp(-a)).sum(axis=0)
        return du * xp.exp(-a)


def sinh_layer(bug=None, xp=numpy, dim=3):
    rng = numpy.random.default_rng(0)
    a = to_device(rng.normal(0, 0.5, dim), xp)
    b = to_device(rng.normal(0, 0.5, dim), xp)
    return SinhScale(a, b, bug)


def data(xp, shape=(4, 3)):
    return to_device(numpy.random.default_rng(1).normal(size=shape), xp)


def rows_failing(report):
    return {name for name, err, tol in report.rows if not err <= tol}


def test_gradcheck_passes_a_correct_layer(xp):
    report = gradcheck(sinh_layer(xp=xp), data(xp), verbose=False)
    assert report.ok, report
    assert report.max_error < 1e-8
    assert set(report.errors()) >= {
        "forward: d/dinput",
        "forward: d/da",
        "inverse: d/db",
        "forward: logdet vs slogdet(J)",
    }


def test_gradcheck_fails_on_wrong_input_gradient(xp):
    report = gradcheck(sinh_layer("input", xp), data(xp), verbose=False)
    assert not report.ok
    assert rows_failing(report) == {"forward: d/dinput"}
    assert "forward: d/dinput" in "\n".join(report.details)  # the per-entry table is printed
    assert "NO" in str(report)


def test_gradcheck_fails_on_wrong_parameter_gradient(xp):
    report = gradcheck(sinh_layer("param", xp), data(xp), verbose=False)
    assert rows_failing(report) == {"forward: d/da"}


def test_gradcheck_fails_on_wrong_logdet_that_gradients_cannot_see(xp):
    # backward is consistent with the wrong log-det: only the Jacobian check can catch it
    report = gradcheck(sinh_layer("logdet", xp), data(xp), verbose=False)
    assert rows_failing(report) == {"forward: logdet vs slogdet(J)", "inverse: logdet vs slogdet(J)"}


def test_gradcheck_fails_on_wrong_inverse(xp):
    report = check_roundtrip(sinh_layer("inverse", xp), data(xp))
    assert rows_failing(report) == {"max |inverse(forward(x)) - x|"}


def test_check_gradients_with_max_entries_checks_a_subset():
    report = check_gradients(sinh_layer("input"), data(numpy, (50, 3)), directions=("forward",), max_entries=5)
    assert not report.ok
    table = report.details[0]
    assert len(table.splitlines()) == 2 + 5  # title, header and the 5 sampled entries


def test_check_module_gradients_fails_on_wrong_bias_gradient(rng):
    class WrongBias(Linear):
        def backward(self, dy):
            dx = super().backward(dy)
            self._own_grads["b"] *= 2
            return dx

    x = to_device(rng.standard_normal((4, 3)))  # on the layers' (default) backend
    good = check_module_gradients(Linear(3, 2, dtype=numpy.float64, rng=make_rng(0)), x)
    assert good.ok, good
    bad = check_module_gradients(WrongBias(3, 2, dtype=numpy.float64, rng=make_rng(0)), x)
    assert rows_failing(bad) == {"d/db"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_taylor_test_orders_for_correct_and_wrong_gradient(seed):
    # r0 ~ eps and r1 ~ eps^2 for the right gradient; r1 ~ eps for a wrong one
    x = data(numpy, (8, 3))
    for direction in ("forward", "inverse"):
        _, order0, order1 = taylor_test(sinh_layer(), x, direction, seed=seed)
        assert order0 == pytest.approx(1, abs=0.1) and order1 == pytest.approx(2, abs=0.1)
    table, order0, order1 = taylor_test(sinh_layer("input"), x, seed=seed)
    assert order0 == pytest.approx(1, abs=0.1) and order1 == pytest.approx(1, abs=0.15)
    assert "observed order" in table


def test_brute_force_logdet_of_a_linear_map_equals_slogdet(rng):
    A = rng.standard_normal((4, 4))
    x = rng.standard_normal((3, 4))
    brute = brute_force_logdet(lambda v: v @ A.T, x)
    assert brute.shape == (3,)
    numpy.testing.assert_allclose(brute, numpy.linalg.slogdet(A)[1], atol=1e-9)


def test_brute_force_logdet_of_images_and_tuples(rng):
    # (N, C, H, W) inputs flatten to D = C*H*W; fn may return (out, logdet)
    scale = numpy.exp(rng.standard_normal((1, 2, 2, 2)))
    x = rng.standard_normal((2, 2, 2, 2))
    brute = brute_force_logdet(lambda v: (v * scale, None), x)
    numpy.testing.assert_allclose(brute, numpy.log(scale).sum(), atol=1e-9)


def test_brute_force_logdet_rejects_non_square_maps(rng):
    with pytest.raises(ValueError, match="from D to D"):
        brute_force_logdet(lambda v: v[:, :1], rng.standard_normal((2, 3)))


def test_check_logdet_reports_absolute_error(xp):
    report = check_logdet(sinh_layer("logdet", xp), data(xp))
    x = numpy.random.default_rng(1).normal(size=(4, 3))
    expected = numpy.log(numpy.cosh(x)).sum(axis=1).max()  # the forgotten term
    assert report.errors()["forward: logdet vs slogdet(J)"] == pytest.approx(expected, rel=1e-6)


def test_relative_error_is_normwise():
    assert relative_error(numpy.array([1.0, 2.0]), numpy.array([1.0, 2.0])) == 0.0
    assert relative_error(numpy.zeros(3), numpy.zeros(3)) == 0.0
    assert relative_error(numpy.array([3.0, 4.0]), numpy.zeros(2)) == pytest.approx(1.0)
    expected = 1e-3 / (1 + numpy.sqrt(1 + 1e-6))  # |a - n| / (|a| + |n|)
    assert relative_error(numpy.array([1.0, 0.0]), numpy.array([1.0, 1e-3])) == pytest.approx(expected, rel=1e-12)
