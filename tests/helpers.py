"""The shared layer checks: each layer's test feeds them with a factory.

    def make(dtype):
        layer = AffineCoupling(5, half_mask(5), hidden=(8, 8), dtype=dtype)
        return randomize_params(layer, numpy.random.default_rng(0))

    assert_layer_passes_all_checks(make, x, xp)

A factory takes a dtype and returns a fresh layer on the host whose every
parameter is non-zero (a zero-initialised last layer makes most gradients
trivially zero, so a check of it would prove little). The checks build the
layer in float64 for the finite differences and in float32 for the
dtype-and-shape check, and move it to the backend ``xp``.
"""

import numpy

from minflow.backend import get_array_module, to_device, to_numpy
from minflow.flows import Flow, Inverse
from minflow.gradcheck import check_module_gradients, gradcheck

__all__ = ["assert_block_passes_all_checks", "assert_layer_passes_all_checks", "randomize_params"]

TOL = 1e-6  # norm-wise relative error of gradients; absolute error of log-dets
ROUNDTRIP_TOL = 1e-10  # float64 round trips


def randomize_params(module, rng, scale=0.5):
    """Overwrite every parameter of ``module`` in place with N(0, scale^2) draws; returns module.

    Args:
        module: any Module; its arrays stay the same objects (optimizers and
            parents keep seeing them), on their device and in their dtype.
        rng: a seeded host generator (``numpy.random.default_rng``).
        scale: standard deviation of the draws.
    """
    for p in module.params.values():
        p[...] = to_device(scale * rng.standard_normal(p.shape), get_array_module(p), p.dtype)
    return module


def _assert_no_zero_params(module):
    zero = [name for name, p in module.params.items() if not bool((p != 0).any())]
    assert not zero, (
        f"{type(module).__name__} has all-zero parameters {zero}: a gradient check of them proves little. "
        "Call randomize_params(layer, rng) in the factory."
    )


def _assert_rows_cover(report, module, prefixes):
    """The report has a row for the input and for every parameter, under every prefix."""
    names = {name for name, _, _ in report.rows}
    expected = {f"{p}d/d{key}" for p in prefixes for key in ["input", *module.params]}
    missing = expected - names
    assert not missing, f"gradient check skipped {sorted(missing)}:\n{report}"


def _max_abs(a):
    return float(numpy.max(numpy.abs(to_numpy(a)))) if a.size else 0.0


def assert_layer_passes_all_checks(
    factory, x, xp=numpy, directions=("forward", "inverse"), tol=TOL, roundtrip_tol=ROUNDTRIP_TOL, max_entries=None
):
    """Every check a Bijection must pass, in float64 on ``xp`` (and float32 for dtypes).

    1. gradients of the input and of every parameter by central differences,
       in each of ``directions``; the log-det against slogdet of the
       brute-force Jacobian; inverse(forward(x)) == x (``gradcheck``);
    2. ``Flow([layer, Inverse(layer)])`` is the identity with zero log-det,
       and so is ``Flow([Inverse(layer), layer])`` on z;
    3. float32 in -> float32 out, shapes kept, logdet of shape (N,), both ways.

    Args:
        factory: ``factory(dtype)`` -> a fresh layer with non-zero parameters.
        x: (N, ...) host array, the input of ``forward``.
        xp: the backend to run on (the ``xp`` fixture).
    """
    layer = factory(numpy.float64).to(xp)
    _assert_no_zero_params(layer)
    x64 = to_device(x, xp, numpy.float64)
    n = x64.shape[0]

    report = gradcheck(layer, x64, directions=directions, tol=tol, max_entries=max_entries, verbose=False)
    assert report.ok, report
    _assert_rows_cover(report, layer, [f"{d}: " for d in directions])

    out, logdet = Flow([layer, Inverse(layer)]).forward(x64)
    assert out.shape == x64.shape and logdet.shape == (n,)
    assert _max_abs(out - x64) < roundtrip_tol, "Flow([layer, Inverse(layer)]) is not the identity"
    assert _max_abs(logdet) < roundtrip_tol, "Flow([layer, Inverse(layer)]) has a non-zero log-det"
    z = layer.forward(x64)[0]
    out, logdet = Flow([Inverse(layer), layer]).forward(z)
    assert _max_abs(out - z) < roundtrip_tol and _max_abs(logdet) < roundtrip_tol

    layer32 = factory(numpy.float32).to(xp)
    x32 = x64.astype(numpy.float32)
    z32, logdet32 = layer32.forward(x32)
    assert (z32.dtype, logdet32.dtype) == (numpy.float32, numpy.float32), (z32.dtype, logdet32.dtype)
    assert z32.shape == z.shape and logdet32.shape == (n,)
    x_back, logdet_back = layer32.inverse(z32)
    assert (x_back.dtype, logdet_back.dtype) == (numpy.float32, numpy.float32), (x_back.dtype, logdet_back.dtype)
    assert x_back.shape == x32.shape and logdet_back.shape == (n,)
    assert _max_abs(x_back - x32) < 1e-4 * (1 + _max_abs(x32))
    return report


def assert_block_passes_all_checks(factory, x, xp=numpy, tol=TOL):
    """Every check a building block (``y = forward(x)``, ``dx = backward(dy)``) must pass.

    1. gradients of the input and of every parameter by central differences
       in float64 (``check_module_gradients``);
    2. float32 in -> float32 out for y and dx, dx of the shape of x.

    Args:
        factory: ``factory(dtype)`` -> a fresh block with non-zero parameters.
        x: (N, ...) host array, away from kinks (ReLU) by more than h.
        xp: the backend to run on.
    """
    block = factory(numpy.float64).to(xp)
    _assert_no_zero_params(block)
    x64 = to_device(x, xp, numpy.float64)
    report = check_module_gradients(block, x64, tol=tol)
    assert report.ok, report
    _assert_rows_cover(report, block, [""])

    block32 = factory(numpy.float32).to(xp)
    x32 = x64.astype(numpy.float32)
    y = block32.forward(x32)
    dx = block32.backward(xp.ones_like(y))
    assert (y.dtype, dx.dtype) == (numpy.float32, numpy.float32), (y.dtype, dx.dtype)
    assert dx.shape == x32.shape
    assert all(g.dtype == numpy.float32 for g in block32.grads.values())
    return report


class TransformerLayer:
    """A Bijection of x alone made of a transformer and a fixed batch of raw parameters (N, P, *S).

    The parameters are a learnable array ``params["params"]``, so the shared
    checks (``assert_layer_passes_all_checks``) test the gradient of every raw
    parameter, in both directions, as well as the input's.
    """

    def __new__(cls, transformer, params):
        from minflow.flows.base import Bijection

        class _Layer(Bijection):
            def __init__(self):
                super().__init__()
                self.transformer = self.add_child("transformer", transformer)
                self.add_param("params", params)

            def _sum(self, logdet):
                return logdet.sum(axis=tuple(range(1, logdet.ndim)))

            def _spread(self, dlogdet, ndim):
                return dlogdet.reshape((-1,) + (1,) * (ndim - 1))

            def forward(self, x):
                y, logdet = self.transformer.forward(x, self._own_params["params"])
                return y, self._sum(logdet)

            def inverse(self, y):
                x, logdet = self.transformer.inverse(y, self._own_params["params"])
                return x, self._sum(logdet)

            def backward(self, dy, dlogdet):
                dx, dparams = self.transformer.backward(dy, self._spread(dlogdet, dy.ndim))
                self._own_grads["params"] += dparams
                return dx

            def inverse_backward(self, dx, dlogdet):
                dy, dparams = self.transformer.inverse_backward(dx, self._spread(dlogdet, dx.ndim))
                self._own_grads["params"] += dparams
                return dy

        return _Layer()
