"""Diagnostics: find the first layer of a flow whose output or gradient is NaN or infinite.

When a loss turns NaN, the number alone says nothing about where it came
from. This module re-runs one batch through a model with every layer
watched, in the order the computation runs:

    1. the batch itself, then every parameter (were they already bad?);
    2. the density pass, layer by layer: each layer's output and log-det;
    3. the base log-density (or, for reverse KL, the energy and its gradient);
    4. the backward pass, layer by layer: each layer's input gradient and
       the gradients of its own parameters.

The first layer that turns finite inputs into a non-finite output or
gradient is the culprit; it is named by its position in ``model.flow`` and
its class, e.g. "layer 3 (AffineCoupling)" or, inside a multi-scale block,
"layer 7.inner.2 (ImageAffineCoupling)". Layers nested in composites
(``Flow``, ``FactorOut``, ``GlowStep``) are watched too, and since an inner
layer finishes before the composite that called it, the innermost culprit
is the one reported.

This is a debugging tool, run once after something went wrong: it reads
values back to the host after every layer, which the training loop itself
never does. ``train.fit`` calls it when the loss or a gradient becomes
non-finite, ``FlowModel.log_prob`` and ``sample`` when their result is NaN
(or when a layer fails on a NaN that an earlier layer made).

The argument checks ``check_positive_int`` and ``check_positive_float``
live in ``minflow.checks``; they are importable from here too.
"""

from __future__ import annotations

import dataclasses
import math

from .backend import get_array_module
from .checks import check_positive_float, check_positive_int
from .flows.base import Bijection
from .metrics import nll_and_gradient, reverse_kl_and_gradient

__all__ = [
    "Diagnosis",
    "NonFiniteError",
    "check_positive_float",
    "check_positive_int",
    "diagnose_last_batch",
    "diagnose_nll",
    "diagnose_reverse_kl",
    "diagnose_sampling",
    "layer_label",
]

_PASSES = ("forward", "inverse", "backward", "inverse_backward")


class NonFiniteError(FloatingPointError):
    """A model produced NaN or infinite values from finite inputs; ``.diagnosis`` says where."""

    def __init__(self, message, diagnosis=None):
        super().__init__(message)
        self.diagnosis = diagnosis


@dataclasses.dataclass(eq=False, repr=False)
class Diagnosis:
    """Where a re-run batch first went non-finite (or that it stayed finite).

    Attributes:
        found: True if a non-finite value was found.
        stage: "batch", "parameter", "output", "log-det", "base log-density",
            "energy", "energy gradient", "input gradient", "parameter gradient",
            "error" (the layer raised, e.g. on a singular matrix), or None when
            nothing was found.
        layer_path: the layer's position in ``model.flow`` ("3", "7.inner.2"),
            "" for the flow itself, None for stages outside the flow.
        layer_class: the layer's class name, or None.
        detail: one sentence with the numbers (how many entries, how large).
    """

    stage: str | None = None
    layer_path: str | None = None
    layer_class: str | None = None
    detail: str = ""

    @property
    def found(self):
        return self.stage is not None

    @property
    def layer(self):
        """'layer 3 (AffineCoupling)', or None for stages outside the flow."""
        if self.layer_path is None:
            return None
        return layer_label(self.layer_path, self.layer_class)

    def __str__(self):
        if not self.found:
            return self.detail or "every value stayed finite"
        return f"{self.layer}: {self.detail}" if self.layer else self.detail

    def __repr__(self):
        return f"Diagnosis(stage={self.stage!r}, layer={self.layer!r}, detail={self.detail!r})"


def layer_label(path, cls_name):
    """'layer 3 (AffineCoupling)'; 'the flow (Planar)' for the root."""
    return f"layer {path} ({cls_name})" if path else f"the flow ({cls_name})"


# -- small host-side helpers (diagnostics may read back; layers may not) -----------


def _is_array(a):
    return hasattr(a, "shape") and hasattr(a, "dtype")


def _n_nonfinite(a):
    """Number of NaN or infinite entries of an array (0 for a Python number that is finite)."""
    if not _is_array(a):
        return 0 if math.isfinite(a) else 1
    xp = get_array_module(a)
    return int((~xp.isfinite(a)).sum())


def _max_abs(a):
    """Largest finite |entry| of a as a Python float (0.0 if none)."""
    if not _is_array(a):
        return abs(a) if math.isfinite(a) else 0.0
    xp = get_array_module(a)
    finite = xp.abs(a[xp.isfinite(a)])
    return float(finite.max()) if finite.size else 0.0


def _count(a, what):
    n_bad = _n_nonfinite(a)
    size = a.size if _is_array(a) else 1
    return f"{what} is non-finite ({n_bad} of {size} entries)"


def _owned_params(module, grads=False):
    """name -> array of the parameters (or gradients) a layer owns: its own and its
    non-Bijection children's (a coupling's conditioner), not those of nested layers."""
    out = dict(module._own_grads if grads else module._own_params)
    for child_name, child in module._children.items():
        if not isinstance(child, Bijection):
            for key, value in (child.grads if grads else child.params).items():
                out[f"{child_name}.{key}"] = value
    return out


def _largest_param(module):
    """' (largest |parameter|: net.linear2.W = 1e+30)', or '' for a layer without parameters."""
    params = _owned_params(module)
    if not params:
        return ""
    name, value = max(((n, _max_abs(p)) for n, p in params.items()), key=lambda item: item[1])
    return f"; its largest |parameter| is {name} = {value:.3g}"


def _bijections(module, path=""):
    """(path, layer) for every Bijection in the tree, parents before children."""
    if isinstance(module, Bijection):
        yield path, module
    for name, child in module._children.items():
        yield from _bijections(child, f"{path}.{name}" if path else name)


# -- watching every layer ----------------------------------------------------------


class _Watch:
    """Wraps the four passes of every layer of a flow (instance attributes, removed on exit)
    and records the first call that turned finite inputs into non-finite results."""

    def __init__(self, flow):
        self.flow = flow
        self.found = None

    def __enter__(self):
        self._patched = []
        for path, layer in _bijections(self.flow):
            for name in _PASSES:
                self._patched.append((layer, name))
                setattr(layer, name, self._wrap(path, layer, name, getattr(layer, name)))
        return self

    def __exit__(self, exc_type, exc, tb):
        for layer, name in self._patched:
            layer.__dict__.pop(name, None)
        # a layer raised (a singular matrix, a solver that failed): the diagnosis names it, the run stops
        return exc_type is not None and issubclass(exc_type, Exception) and self.found is not None

    def _wrap(self, path, layer, name, method):
        def watched(*args):
            inputs_ok = all(_n_nonfinite(a) == 0 for a in args)
            try:
                out = method(*args)
            except Exception as err:
                if self.found is None:  # the innermost layer that raised (e.g. a singular matrix)
                    detail = f"its {name} raised {type(err).__name__}: {err}"
                    self.found = Diagnosis("error", path, type(layer).__name__, detail)
                raise
            if self.found is None and inputs_ok:
                self.found = self._inspect(path, layer, name, args, out)
            return out

        return watched

    @staticmethod
    def _inspect(path, layer, name, args, out):
        cls = type(layer).__name__
        size = f"{_max_abs(args[0]):.3g}"
        if name in ("forward", "inverse"):
            value, logdet = out
            what = "z" if name == "forward" else "x"
            for stage, array, label in (
                ("output", value, f"its {name} output {what}"),
                ("log-det", logdet, f"its {name} log-det"),
            ):
                if _n_nonfinite(array):
                    return Diagnosis(
                        stage,
                        path,
                        cls,
                        f"{_count(array, label)} although its input is finite "
                        f"(largest |input| {size}){_largest_param(layer)}",
                    )
            return None
        which = "forward" if name == "backward" else "inverse"
        if _n_nonfinite(out):
            return Diagnosis(
                "input gradient",
                path,
                cls,
                f"{_count(out, f'the gradient of its {which} input ({name})')} although the gradient "
                f"coming from above is finite{_largest_param(layer)}",
            )
        for pname, grad in _owned_params(layer, grads=True).items():
            if _n_nonfinite(grad):
                return Diagnosis(
                    "parameter gradient",
                    path,
                    cls,
                    f"{_count(grad, f'the gradient of its parameter {pname} ({name})')}{_largest_param(layer)}",
                )
        return None


def _check_batch_and_params(model, batch, what):
    """A Diagnosis if the batch or a parameter is already non-finite, else None."""
    if _n_nonfinite(batch):
        return Diagnosis(
            "batch",
            None,
            None,
            f"{_count(batch, f'the {what} itself')}: clean the data (or the noise) before training",
        )
    for path, layer in _bijections(model.flow):
        for pname, p in _owned_params(layer).items():
            if _n_nonfinite(p):
                return Diagnosis(
                    "parameter",
                    path,
                    type(layer).__name__,
                    f"{_count(p, f'its parameter {pname}')} before this batch was run: an earlier "
                    "update already broke it",
                )
    return None


class _KeepState:
    """Put back gradients and buffers (running statistics) after a diagnostic run."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.grads = {k: g.copy() for k, g in self.model.grads.items()}
        self.buffers = {k: b.copy() if _is_array(b) else b for k, b in self.model.buffers().items()}
        self.model.zero_grads()
        return self

    def __exit__(self, *exc):
        for k, g in self.model.grads.items():
            g[...] = self.grads[k]
        for k, b in self.buffers.items():
            self.model.set_buffer(k, b)
        return False


def _nothing(direction):
    return Diagnosis(
        detail=f"re-running the batch through the {direction} pass and its backward, every value stayed "
        "finite: the non-finite value did not come from these parameters and this batch"
    )


# -- the entry points -----------------------------------------------------------------


def diagnose_nll(model, x, backward=True):
    """Re-run maximum likelihood on the batch ``x`` layer by layer; return a ``Diagnosis``.

    Mirrors ``FlowModel.nll_and_backward``: the density pass x -> z through
    every layer, log p(z) + logdet, then (if ``backward``) the gradient of the
    mean NLL back down through every layer. Gradients and buffers of the model
    are put back afterwards.

    Args:
        model: a FlowModel (``flow``, ``base``).
        x: the batch, (N, *event_shape).
        backward: also run and check the backward pass.
    """
    found = _check_batch_and_params(model, x, "batch")
    if found:
        return found
    with _KeepState(model), _Watch(model.flow) as watch:
        log_q, z, logdet = model._log_prob_pass(x)
        if watch.found:
            return watch.found
        if _n_nonfinite(log_q):
            return Diagnosis(
                "base log-density",
                None,
                None,
                f"{_count(log_q, 'log p(z) + logdet')} although every layer's output is finite: "
                f"|z| reaches {_max_abs(z):.3g} and |logdet| {_max_abs(logdet):.3g}, beyond the range of "
                f"{z.dtype} once squared or summed",
            )
        if backward:
            model.log_prob_backward(nll_and_gradient(log_q)[1])
            if watch.found:
                return watch.found
    return watch.found or _nothing("density (forward)")


def diagnose_sampling(model, z):
    """Re-run the sampling pass x = f^{-1}(z) layer by layer (no backward); return a ``Diagnosis``."""
    found = _check_batch_and_params(model, z, "base noise")
    if found:
        return found
    with _KeepState(model), _Watch(model.flow) as watch:
        model.flow.inverse(z)
        if watch.found:
            return watch.found
    return watch.found or Diagnosis(detail="re-running the sampling pass, every value stayed finite")


def diagnose_reverse_kl(model, z0, energy, backward=True):
    """Re-run reverse KL on the base noise ``z0`` layer by layer; return a ``Diagnosis``.

    Mirrors ``FlowModel.reverse_kl_and_backward``: x = f^{-1}(z0) through
    every layer, log q(x) + U(x), then the gradient back through every
    layer's ``inverse_backward``.

    Args:
        model: a FlowModel. z0: (N, *event_shape) base noise.
        energy: has ``energy(x)`` and ``grad(x)``. backward: run the backward too.
    """
    found = _check_batch_and_params(model, z0, "base noise")
    if found:
        return found
    with _KeepState(model), _Watch(model.flow) as watch:
        x, log_q = model._sample_pass(z0)
        if watch.found:
            return watch.found
        loss, dx, dlog_q = reverse_kl_and_gradient(x, log_q, energy)
        if _n_nonfinite(loss):
            u = energy.energy(x)
            if _n_nonfinite(u):
                return Diagnosis(
                    "energy",
                    None,
                    None,
                    f"{_count(u, 'the energy U(x) of the samples')} although every layer's output is finite "
                    f"(|x| reaches {_max_abs(x):.3g})",
                )
            return Diagnosis(
                "base log-density",
                None,
                None,
                f"{_count(log_q, 'log q(x)')} although every layer's output is finite "
                f"(|log q| reaches {_max_abs(log_q):.3g})",
            )
        if backward:
            if _n_nonfinite(dx):
                return Diagnosis(
                    "energy gradient",
                    None,
                    None,
                    f"{_count(energy.grad(x), 'the energy gradient dU/dx')} (|x| reaches {_max_abs(x):.3g})",
                )
            model.sample_backward(dx, dlog_q)
            if watch.found:
                return watch.found
    return watch.found or _nothing("sampling (inverse)")


def diagnose_last_batch(model):
    """Re-run the batch of the model's last training call (``model.last_batch``), or None.

    ``FlowModel.nll_and_backward`` records ``("nll", x)`` and
    ``reverse_kl_and_backward`` records ``("reverse_kl", z0, energy)``; a
    loss that uses neither leaves nothing to re-run.
    """
    record = getattr(model, "last_batch", None)
    if record is None or not hasattr(model, "flow"):
        return None
    if record[0] == "nll":
        return diagnose_nll(model, record[1])
    return diagnose_reverse_kl(model, record[1], record[2])
