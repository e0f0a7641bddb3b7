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

from minflow.backend import get_array_module, make_rng, to_device, to_numpy
from minflow.flows import Flow, Inverse, RecomputeError
from minflow.gradcheck import check_module_gradients, gradcheck
from minflow.nn.module import Module

__all__ = [
    "QuadraticEnergy",
    "assert_backward_keeps_state",
    "assert_block_passes_all_checks",
    "assert_layer_passes_all_checks",
    "assert_recompute_matches_cached",
    "randomize_params",
    "state_snapshot",
]

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


# -- memory by inversion and side effects of a backward pass ---------------------------------

RECOMPUTE_RTOL = 1e-10  # float64: recompute="invert" against the cached path, norm-wise per array
RECOMPUTE_FLOOR = 1e-14  # relative to the largest array of the same step, for arrays that are 0 but for rounding


class QuadraticEnergy:
    """U(x) = 0.5 sum_i w_i (x_i - c_i)^2 over any event shape: a reverse-KL target for any model."""

    def __init__(self, event_shape, seed=0):
        rng = numpy.random.default_rng(seed)
        self.c = rng.standard_normal(event_shape)
        self.w = rng.uniform(0.5, 2.0, event_shape)

    def energy(self, x):
        return 0.5 * (self.w * (x - self.c) ** 2).reshape(x.shape[0], -1).sum(axis=1)  # (N,)

    def grad(self, x):
        return self.w * (x - self.c)  # (N, *event_shape)


def _training_records(model, direction, x, energy, steps, lr):
    """(group, name, array): the loss and every gradient of ``steps`` training steps (small gradient
    steps between them), then one pass and backward of the flow with fixed random upstream gradients
    (its input gradient too), then every parameter and buffer."""
    records = []
    for step in range(steps):
        model.zero_grads()
        if direction == "forward":
            loss = model.nll_and_backward(x)
        else:
            loss = model.reverse_kl_and_backward(energy, x.shape[0], make_rng(100 + step))
        records.append((f"step {step}", "loss", numpy.asarray(loss)))
        records += [(f"step {step}", f"grad {k}", g.copy()) for k, g in model.grads.items()]
        largest = max([1.0] + [_max_abs(g) for g in model.grads.values()])
        for k, p in model.params.items():
            p -= (lr / largest) * model.grads[k]  # a small step, whatever the gradients' scale
    flow = model.flow
    rng = numpy.random.default_rng(7)
    model.zero_grads()
    if direction == "forward":
        out, logdet = flow.forward(x)
        d_in = flow.backward(rng.standard_normal(out.shape), rng.standard_normal(logdet.shape))
    else:
        z = model.base.sample(x.shape[0], make_rng(99), x.dtype)
        out, logdet = flow.inverse(z)
        d_in = flow.inverse_backward(rng.standard_normal(out.shape), rng.standard_normal(logdet.shape))
    records += [("pass", "output", out), ("pass", "logdet", logdet), ("pass", "input gradient", d_in)]
    records += [("pass", f"grad {k}", g.copy()) for k, g in model.grads.items()]
    records += [("after", f"param {k}", p.copy()) for k, p in model.params.items()]
    records += [("after", f"buffer {k}", numpy.asarray(b).copy()) for k, b in model.buffers().items()]
    return records


def assert_recompute_matches_cached(
    build, direction, x, energy=None, steps=2, lr=0.01, rtol=RECOMPUTE_RTOL, allow_refusal=False
):
    """``recompute="invert"`` gives the cached path's losses, gradients, input gradient, parameters
    and buffers, to ``rtol`` relative (norm-wise per array), over a few training steps.

    Args:
        build: ``build()`` -> a fresh float64 FlowModel; two calls build the same model.
        direction: "forward" (maximum likelihood, ``nll_and_backward``, then
            ``flow.backward``) or "inverse" (reverse KL, ``reverse_kl_and_backward``
            on ``energy``, then ``flow.inverse_backward``).
        x: the data batch (forward), or a batch of the data's shape whose size is the sample count (inverse).
        allow_refusal: a ``RecomputeError`` of the recomputing run (a layer saying it cannot rebuild
            its input for these values, e.g. a saturated logit) passes too; returns False then.

    Returns:
        True where the two runs were compared.
    """
    cached = _training_records(build(), direction, x, energy, steps, lr)
    try:
        recomputed = _training_records(build().set_recompute("invert"), direction, x, energy, steps, lr)
    except RecomputeError:
        if allow_refusal:
            return False
        raise
    assert [r[:2] for r in cached] == [r[:2] for r in recomputed]
    # A gradient that is zero in exact arithmetic (ActNorm's log-scale right after its data init, where
    # the NLL is stationary) is rounding noise in both paths: it is compared against the largest array
    # of its group (the same step) at rounding level, RECOMPUTE_FLOOR, instead of against itself.
    group_scale = {}
    for group, _, a in cached:
        group_scale[group] = max(group_scale.get(group, 0.0), _max_abs(a))
    bad = []
    for (group, name, a), (_, _, b) in zip(cached, recomputed):
        err = _max_abs(a - b)
        if not err <= max(rtol * max(_max_abs(a), _max_abs(b)), RECOMPUTE_FLOOR * group_scale[group]):
            bad.append(f"{group}, {name}: |cached - recomputed| = {err:.3g}, |cached| = {_max_abs(a):.3g}")
    assert not bad, f"recompute='invert' differs from the cached path ({direction}):\n  " + "\n  ".join(bad)
    return True


def _frozen(value):
    """A copy of an attribute's value to compare later: arrays copied, modules by identity."""
    if isinstance(value, Module):
        return ("module", id(value))
    if hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "copy"):
        return ("array", to_numpy(value).copy())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_frozen(v) for v in value])
    if isinstance(value, dict):
        return ("dict", {k: _frozen(v) for k, v in value.items()})
    return ("value", value)


def _same(a, b):
    if a[0] != b[0]:
        return False
    if a[0] == "array":
        return a[1].shape == b[1].shape and a[1].dtype == b[1].dtype and numpy.array_equal(a[1], b[1], equal_nan=True)
    if a[0] in ("list", "tuple"):
        return len(a[1]) == len(b[1]) and all(_same(u, v) for u, v in zip(a[1], b[1]))
    if a[0] == "dict":
        return a[1].keys() == b[1].keys() and all(_same(a[1][k], b[1][k]) for k in a[1])
    return a[1] == b[1] if not isinstance(a[1], float) else (a[1] == b[1] or (a[1] != a[1] and b[1] != b[1]))


def state_snapshot(module):
    """Every attribute of ``module`` and its descendants but their caches and gradients:
    parameters, buffers (running statistics, ActNorm's initialised flag) and any other state."""
    return {
        f"{path or '(top)'}.{key}": _frozen(value)
        for path, m in module.named_modules()
        for key, value in vars(m).items()
        if key not in ("_caches", "_own_grads")
    }


def assert_backward_keeps_state(flow, direction, inp, seed=0):
    """Run one ``direction`` pass of ``flow`` on ``inp``, then its backward: the backward changes no
    parameter, buffer or other state (only gradients and caches)."""
    rng = numpy.random.default_rng(seed)
    out, logdet = (flow.forward if direction == "forward" else flow.inverse)(inp)
    before = state_snapshot(flow)
    backward = flow.backward if direction == "forward" else flow.inverse_backward
    backward(rng.standard_normal(out.shape), rng.standard_normal(logdet.shape))
    after = state_snapshot(flow)
    changed = sorted(
        k for k in before.keys() | after.keys() if k not in before or k not in after or not _same(before[k], after[k])
    )
    assert not changed, f"the {direction} backward changed state: {changed}"


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
