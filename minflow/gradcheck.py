"""Finite-difference checks for any layer: the tool that decides if a backward is right.

Every layer in minflow has a hand-written backward pass. This module checks
it the way a careful student would, with nothing but the forward pass:

1. Gradients by central differences, in float64:
       dL/dtheta_i ~ (L(theta + h e_i) - L(theta - h e_i)) / (2h),  error O(h^2),
   for the input and every parameter, in both directions. One scalar checks
   both outputs of a layer at once: L = sum(dz * z) + sum(dlogdet * logdet)
   with random fixed dz and dlogdet, so dL/dz = dz and dL/dlogdet = dlogdet
   are exactly what ``backward`` receives.
2. The log-determinant against brute force: build the Jacobian dz/dx of each
   sample column by column with central differences and take ``slogdet``.
3. The inverse round trip: inverse(forward(x)) == x, and the two log-dets
   cancel.
4. A Taylor-remainder test: along a random direction v,
       |L(x + eps v) - L(x)|                   shrinks like O(eps),
       |L(x + eps v) - L(x) - eps <g, v>|      shrinks like O(eps^2)
   if and only if g is the true gradient. Its table shows the orders.

Errors are norm-wise relative errors,
    |g_analytic - g_numeric| / max(|g_analytic| + |g_numeric|, 1e-12),
with a per-entry table of the worst entries printed on failure.
"""

import math

from .backend import get_array_module, to_numpy

__all__ = [
    "CheckReport",
    "brute_force_logdet",
    "check_gradients",
    "check_logdet",
    "check_module_gradients",
    "check_roundtrip",
    "gradcheck",
    "numerical_gradient",
    "relative_error",
    "taylor_test",
]

DEFAULT_H = 1e-5
DEFAULT_TOL = 1e-6


class CheckReport:
    """Rows of (quantity, error, tolerance) from one or more checks.

    ``report.ok`` is True if every row passes; ``str(report)`` is a table;
    ``report.details`` holds per-entry tables of failing rows.
    """

    def __init__(self, title=""):
        self.title = title
        self.rows = []  # (name, error, tol)
        self.details = []

    def add(self, name, error, tol, detail=None):
        self.rows.append((name, float(error), float(tol)))
        if detail is not None and not error <= tol:
            self.details.append(f"{name}:\n{detail}")

    def extend(self, other):
        self.rows.extend(other.rows)
        self.details.extend(other.details)
        return self

    @property
    def ok(self):
        return all(err <= tol for _, err, tol in self.rows)

    @property
    def max_error(self):
        return max((err for _, err, _ in self.rows), default=0.0)

    def errors(self):
        """dict quantity -> error."""
        return {name: err for name, err, _ in self.rows}

    def __str__(self):
        width = max([len(n) for n, _, _ in self.rows] + [8])
        lines = [self.title] if self.title else []
        lines.append(f"{'quantity':<{width}}  {'error':>9}  {'tolerance':>9}  ok")
        for name, err, tol in self.rows:
            mark = "yes" if err <= tol else "NO"
            lines.append(f"{name:<{width}}  {err:9.2e}  {tol:9.2e}  {mark}")
        lines.extend(self.details)
        return "\n".join(lines)

    __repr__ = __str__


def relative_error(analytic, numeric):
    """Norm-wise relative error |a - n| / max(|a| + |n|, 1e-12)."""
    xp = get_array_module(analytic, numeric)
    a = xp.asarray(analytic, dtype=xp.float64).ravel()
    n = xp.asarray(numeric, dtype=xp.float64).ravel()
    num = float(xp.linalg.norm(a - n))
    den = float(xp.linalg.norm(a) + xp.linalg.norm(n))
    return num / max(den, 1e-12)


def _entry_table(analytic, numeric, indices, k=8):
    """The k worst entries as a small text table (printed on failure)."""
    a = to_numpy(analytic).ravel()[indices]
    n = to_numpy(numeric).ravel()[indices]
    diff = abs(a - n)
    order = diff.argsort()[::-1][:k]
    lines = [f"    {'index':>7}  {'analytic':>13}  {'numeric':>13}  {'|diff|':>9}"]
    for j in order:
        lines.append(f"    {indices[j]:>7}  {a[j]:13.6e}  {n[j]:13.6e}  {diff[j]:9.2e}")
    return "\n".join(lines)


def _entries_to_check(size, max_entries, rng):
    """All flat indices, or a random subset of ``max_entries`` of them."""
    import numpy

    if max_entries is None or size <= max_entries:
        return numpy.arange(size)
    return numpy.sort(rng.choice(size, size=max_entries, replace=False))


def numerical_gradient(loss_fn, array, h=DEFAULT_H, indices=None):
    """Central-difference gradient of ``loss_fn()`` w.r.t. ``array``, in place.

    Each checked entry is nudged by +h and -h (and restored), so ``loss_fn``
    must read ``array`` itself. Returns a host float64 array of the shape of
    ``array``; entries not in ``indices`` are zero.
    """
    import numpy

    if not array.flags.c_contiguous:
        raise ValueError("numerical_gradient nudges entries in place; give it a C-contiguous array.")
    grad = numpy.zeros(array.size, dtype=numpy.float64)
    flat = array.reshape(-1)  # a view: writing to it writes to array
    if indices is None:
        indices = numpy.arange(array.size)
    for i in indices:
        i = int(i)
        old = flat[i].copy()
        flat[i] = old + h
        loss_plus = loss_fn()
        flat[i] = old - h
        loss_minus = loss_fn()
        flat[i] = old
        grad[i] = (loss_plus - loss_minus) / (2 * h)
    return grad.reshape(array.shape)


def _directions(layer, x, z, directions):
    """(name, run pass, run its backward, input) for each direction asked for."""
    out = []
    if "forward" in directions:
        out.append(("forward", layer.forward, layer.backward, x))
    if "inverse" in directions:
        out.append(("inverse", layer.inverse, layer.inverse_backward, z))
    return out


def check_gradients(
    layer,
    x,
    z=None,
    directions=("forward", "inverse"),
    h=DEFAULT_H,
    tol=DEFAULT_TOL,
    max_entries=None,
    seed=0,
):
    """Check input and parameter gradients of a bijection by central differences.

    Args:
        layer: a Bijection in float64.
        x: (N, ...) float64 input of ``forward``.
        z: input of ``inverse``; default ``layer.forward(x)[0]``.
        directions: which passes to check, "forward" and/or "inverse".
        h: finite-difference step.
        tol: bound on the norm-wise relative error.
        max_entries: check at most this many random entries of each array
            (None: all of them).

    Returns:
        CheckReport with one row per (direction, input or parameter).
    """
    import numpy

    xp = get_array_module(x)
    rng = numpy.random.default_rng(seed)
    layer.forward(x)  # first call: lets layers with data-dependent init initialise
    if z is None:
        z = layer.forward(x)[0]
    report = CheckReport(f"gradient check of {type(layer).__name__} (h={h:g})")
    for direction, run, run_backward, inp in _directions(layer, x, z, directions):
        inp = inp.copy()
        out, logdet = run(inp)
        upstream = xp.asarray(rng.standard_normal(out.shape))
        dlogdet = xp.asarray(rng.standard_normal(logdet.shape))

        def loss(run=run, inp=inp, upstream=upstream, dlogdet=dlogdet):  # defaults bind this direction's values
            o, ld = run(inp)
            return float(xp.sum(upstream * o) + xp.sum(dlogdet * ld))

        layer.zero_grads()
        run(inp)
        d_inp = run_backward(upstream, dlogdet)
        analytic = {"input": d_inp}
        analytic.update({name: g.copy() for name, g in layer.grads.items()})
        arrays = {"input": inp}
        arrays.update(layer.params)
        for name, array in arrays.items():
            idx = _entries_to_check(array.size, max_entries, rng)
            numeric = numerical_gradient(loss, array, h, idx)
            a = to_numpy(analytic[name]).ravel()[idx]
            n = numeric.ravel()[idx]
            err = relative_error(a, n)
            report.add(
                f"{direction}: d/d{name}",
                err,
                tol,
                _entry_table(analytic[name], numeric, idx),
            )
    layer.zero_grads()
    return report


def check_module_gradients(module, x, h=DEFAULT_H, tol=DEFAULT_TOL, max_entries=None, seed=0):
    """Check a building block (``y = module.forward(x)``, ``dx = module.backward(dy)``).

    Same method as ``check_gradients`` with L = sum(dy * y).
    """
    import numpy

    xp = get_array_module(x)
    rng = numpy.random.default_rng(seed)
    x = x.copy()
    y = module.forward(x)
    upstream = xp.asarray(rng.standard_normal(y.shape))

    def loss():
        return float(xp.sum(upstream * module.forward(x)))

    module.zero_grads()
    module.forward(x)
    analytic = {"input": module.backward(upstream)}
    analytic.update({name: g.copy() for name, g in module.grads.items()})
    arrays = {"input": x}
    arrays.update(module.params)
    report = CheckReport(f"gradient check of {type(module).__name__} (h={h:g})")
    for name, array in arrays.items():
        idx = _entries_to_check(array.size, max_entries, rng)
        numeric = numerical_gradient(loss, array, h, idx)
        err = relative_error(to_numpy(analytic[name]).ravel()[idx], numeric.ravel()[idx])
        report.add(f"d/d{name}", err, tol, _entry_table(analytic[name], numeric, idx))
    module.zero_grads()
    return report


def brute_force_logdet(fn, x, h=DEFAULT_H):
    """log|det J| per sample, J = d fn(x) / dx built by central differences.

    Args:
        fn: maps (N, ...) to (out, logdet) or to out, sample by sample.
        x: (N, ...) float64; each sample has D = prod(...) entries.

    Returns:
        (N,) array of log|det J|, J of shape (N, D, D).
    """
    xp = get_array_module(x)

    def out_of(v):
        o = fn(v)
        return o[0] if isinstance(o, tuple) else o

    n = x.shape[0]
    d = int(math.prod(x.shape[1:]))
    flat = x.reshape(n, d)
    jac = xp.zeros((n, d, d), dtype=xp.float64)
    for j in range(d):
        step = xp.zeros_like(flat)
        step[:, j] = h
        plus = out_of((flat + step).reshape(x.shape)).reshape(n, -1)
        minus = out_of((flat - step).reshape(x.shape)).reshape(n, -1)
        if plus.shape[1] != d:
            raise ValueError(
                f"brute_force_logdet needs a map from D to D dimensions; got D={d} in, {plus.shape[1]} out."
            )
        jac[:, :, j] = (plus - minus) / (2 * h)  # column j: d out / d x_j
    _, logabsdet = xp.linalg.slogdet(jac)
    return logabsdet


def check_logdet(layer, x, z=None, directions=("forward", "inverse"), h=DEFAULT_H, tol=DEFAULT_TOL):
    """Compare each direction's log-det with ``slogdet`` of its brute-force Jacobian.

    The error is the largest absolute difference over the batch.
    """
    xp = get_array_module(x)
    layer.forward(x)  # data-dependent init, if any
    if z is None:
        z = layer.forward(x)[0]
    report = CheckReport(f"log-det check of {type(layer).__name__}")
    for direction, run, _, inp in _directions(layer, x, z, directions):
        _, logdet = run(inp)
        brute = brute_force_logdet(run, inp, h)
        err = float(xp.max(xp.abs(logdet - brute)))
        report.add(f"{direction}: logdet vs slogdet(J)", err, tol)
    return report


def check_roundtrip(layer, x, tol=1e-10):
    """inverse(forward(x)) == x and logdet_forward + logdet_inverse == 0."""
    xp = get_array_module(x)
    z, logdet_f = layer.forward(x)
    x_back, logdet_i = layer.inverse(z)
    report = CheckReport(f"round trip of {type(layer).__name__}")
    report.add("max |inverse(forward(x)) - x|", float(xp.max(xp.abs(x_back - x))), tol)
    report.add("max |logdet_f + logdet_i|", float(xp.max(xp.abs(logdet_f + logdet_i))), tol)
    if x_back.shape != x.shape or x_back.dtype != x.dtype:
        report.add(f"shape/dtype kept ({x.shape} {x.dtype})", math.inf, 0.0)
    return report


def taylor_test(layer, x, direction="forward", epsilons=(1e-2, 5e-3, 2.5e-3, 1.25e-3, 6.25e-4), seed=0, verbose=False):
    """Taylor-remainder test of the input gradient along one random direction v.

    Returns (table, order0, order1): the text table and the observed orders
    of r0 = |L(x+eps v) - L(x)| (expect 1) and r1 = |r0 - eps <g, v>| (expect 2),
    each the median of log2(r(eps) / r(eps/2)) over the halvings.

    The steps are small (float64): at eps ~ 0.1 the eps^2 terms can swamp a
    small gradient error, and a wrong gradient would show order 2.
    """
    import numpy

    xp = get_array_module(x)
    rng = numpy.random.default_rng(seed)
    layer.forward(x)
    run, run_backward = (
        (layer.forward, layer.backward) if direction == "forward" else (layer.inverse, layer.inverse_backward)
    )
    out, logdet = run(x)
    upstream = xp.asarray(rng.standard_normal(out.shape))
    dlogdet = xp.asarray(rng.standard_normal(logdet.shape))
    v = xp.asarray(rng.standard_normal(x.shape))

    def loss(inp):
        o, ld = run(inp)
        return float(xp.sum(upstream * o) + xp.sum(dlogdet * ld))

    layer.zero_grads()
    base = loss(x)
    run(x)
    dx = run_backward(upstream, dlogdet)
    slope = float(xp.sum(dx * v))
    layer.zero_grads()
    r0, r1 = [], []
    for eps in epsilons:
        change = loss(x + eps * v) - base
        r0.append(abs(change))
        r1.append(abs(change - eps * slope))
    lines = [
        f"Taylor test of {type(layer).__name__}.{direction}",
        f"{'eps':>9}  {'r0 ~ O(eps)':>12}  {'r1 ~ O(eps^2)':>14}",
    ]
    for eps, a, b in zip(epsilons, r0, r1):
        lines.append(f"{eps:9.2e}  {a:12.4e}  {b:14.4e}")

    def order(r):
        ratios = [math.log2(r[i] / r[i + 1]) for i in range(len(r) - 1) if r[i + 1] > 0 and r[i] > 0]
        return float(numpy.median(ratios)) if ratios else float("nan")

    order0, order1 = order(r0), order(r1)
    lines.append(f"observed order: r0 {order0:.2f} (expect 1), r1 {order1:.2f} (expect 2)")
    table = "\n".join(lines)
    if verbose:
        print(table)
    return table, order0, order1


def gradcheck(
    layer, x, z=None, directions=("forward", "inverse"), h=DEFAULT_H, tol=DEFAULT_TOL, max_entries=None, verbose=True
):
    """Run every check on a bijection and print one table of errors.

    Gradients (input and every parameter, each direction), log-det against
    the brute-force Jacobian, and the round trip. Returns the CheckReport;
    ``assert report.ok, report`` in a test.
    """
    report = CheckReport(f"gradcheck of {type(layer).__name__}")
    report.extend(check_gradients(layer, x, z, directions, h, tol, max_entries))
    report.extend(check_logdet(layer, x, z, directions, h, tol))
    report.extend(check_roundtrip(layer, x))
    if verbose:
        print(report)
    return report
