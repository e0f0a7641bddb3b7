"""FlowModel: a flow and a base distribution, i.e. a density you can train and sample.

Direction: the flow's forward maps data x to latent z. By the change of
variables,

    log q(x) = log p_Z(f(x)) + log|det df/dx|

Two passes and their backwards are the primitives every loss is built on:

    log_q = model.log_prob(x)                    # density direction, (N,)
    dx = model.log_prob_backward(dlog_q)         # dL/dlog_q (N,) -> grads, dL/dx
    x, log_q = model.sample_and_log_prob(n, rng) # sampling direction
    dz0 = model.sample_backward(dx, dlog_q)      # dL/dx, dL/dlog_q -> grads, dL/dz0

Through log q = log p_Z(z) + logdet, a loss's dL/dlog_q reaches the flow as
dL/dz = dL/dlog_q * score(z) and dL/dlogdet = dL/dlog_q; through the sampling
direction, log q(x) = log p_Z(z0) - log|det dx/dz0|, as dL/dlogdet_inv =
-dL/dlog_q. Maximum likelihood (``nll_and_backward``) and reverse KL against
an energy U (``reverse_kl_and_backward``, Rezende & Mohamed 2015) take their
dL/dlog_q (and dL/dx) from ``metrics``.
"""

import math
import warnings

from . import metrics
from .backend import DEFAULT_DTYPE, cpu_chunk, get_array_module, get_backend, make_rng, to_device
from .checks import check_positive_float, check_positive_int
from .diagnostics import NonFiniteError, diagnose_nll, diagnose_sampling
from .flows.base import Bijection
from .nn.module import Module, no_caches

__all__ = ["FlowModel"]


class FlowModel(Module):
    """A normalizing flow model: ``flow`` (data -> latent) over ``base``.

    Args:
        flow: a Bijection (usually a ``Flow``) mapping x to z.
        base: a distribution with ``event_shape``, ``log_prob``, ``score`` and
            ``sample`` (e.g. ``StandardNormal``).
        event_shape: shape of one data point; default the base's.

    Shapes:
        x: (N, *event_shape) -> log_prob: (N,); sample(n): (n, *event_shape).

    Attributes:
        last_batch: what the last training call ran, so that a diverged run
            can be re-run layer by layer (``diagnostics.diagnose_last_batch``):
            ``("nll", x)`` or ``("reverse_kl", z0, energy)``; None before.
        sample_chunk: rows per inverse pass of ``sample`` on a CPU; None
            (default): all at once. A wide conditioner on many rows can sample
            faster in chunks whose activations stay in the CPU's cache between
            elementwise passes (``zoo.realnvp_2d`` sets 1,024 rows); each chunk
            pays the flow's fixed per-call cost again, so a stack of many cheap
            layers (P2) is best run all at once. The samples are the same.
    """

    sample_chunk = None

    def __init__(self, flow, base, event_shape=None):
        super().__init__()
        if not isinstance(flow, Bijection):
            raise TypeError(f"flow must be a Bijection (e.g. Flow([...]) of layers); got {type(flow).__name__}.")
        missing = [m for m in ("event_shape", "log_prob", "score", "sample") if not hasattr(base, m)]
        if missing:
            raise TypeError(
                f"base must be a distribution with event_shape, log_prob, score and sample "
                f"(e.g. StandardNormal(event_shape)); {type(base).__name__} lacks {', '.join(missing)}."
            )
        self.flow = self.add_child("flow", flow)
        self.base = base
        self.event_shape = tuple(event_shape) if event_shape is not None else base.event_shape
        if math.prod(self.event_shape) != math.prod(base.event_shape):
            raise ValueError(
                f"event_shape {self.event_shape} has {math.prod(self.event_shape)} entries but the base's "
                f"event_shape {tuple(base.event_shape)} has {math.prod(base.event_shape)}; a flow keeps the size."
            )
        self.last_batch = None

    # -- validation at the public boundary ---------------------------------

    def check_data(self, x, name="x"):
        """Raise a clear error unless x is a finite float array of shape (N, *event_shape)."""
        self._check_array(x, name)
        n_bad = int((~get_array_module(x).isfinite(x)).sum())  # one read-back
        if n_bad:
            raise ValueError(
                f"{name} contains NaN or infinite values ({n_bad} of {x.size} entries); "
                "clean the data first (e.g. drop those rows)."
            )

    def _check_array(self, x, name="x"):
        """The cheap part of ``check_data`` (type, dtype, shape; no read-back), for every training step."""
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise TypeError(
                f"{name} must be an array of shape (N, {', '.join(map(str, self.event_shape))}); got {type(x).__name__}."
            )
        if x.dtype.kind != "f":
            raise TypeError(
                f"{name} must be a float array; got dtype {x.dtype}. "
                f"Convert it first, e.g. {name}.astype(numpy.float32)."
            )
        if x.ndim != 1 + len(self.event_shape) or tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(
                f"{name} must have shape (N, {', '.join(map(str, self.event_shape))}); got {tuple(x.shape)}."
            )
        if x.shape[0] == 0:
            raise ValueError(f"{name} is an empty batch (N = 0); pass at least one sample.")

    # -- density -----------------------------------------------------------

    def log_prob(self, x):
        """log q(x) per sample, shape (N,).

        Finite for finite x, or -inf where x lies so far out that its density
        underflows the dtype; a NaN or +inf raises ``NonFiniteError`` naming
        the first layer that produced a non-finite value.
        """
        self.check_data(x)
        try:
            log_q, _, _ = self._log_prob_pass(x)
        except Exception as err:
            diagnosis = diagnose_nll(self, x, backward=False)
            if diagnosis.found and diagnosis.stage != "error":  # a NaN upstream made a later layer fail
                raise NonFiniteError(f"log_prob failed ({type(err).__name__}) after {diagnosis}.", diagnosis) from err
            raise
        xp = get_array_module(log_q)
        if bool(xp.any(xp.isnan(log_q) | (log_q == xp.inf))):
            diagnosis = diagnose_nll(self, x, backward=False)
            raise NonFiniteError(
                f"log_prob is NaN or +inf for some inputs (largest |x| {float(xp.abs(x).max()):.3g}): "
                f"{diagnosis}. Inputs far outside the training data, or parameters that blew up, cause this; "
                "try float64 or check the parameters.",
                diagnosis,
            )
        return log_q

    def _log_prob_pass(self, x):
        """The density pass without checks: (log q(x) (N,), z, logdet); keeps z for ``log_prob_backward``."""
        z, logdet = self.flow.forward(x)
        self._save_cache("log_prob", z)
        return self.base.log_prob(z) + logdet, z, logdet  # log q = log p(z) + log|det dz/dx|

    def log_prob_backward(self, dlog_q):
        """Back-propagate dL/dlog_q (N,) of the last ``log_prob`` through the base and the flow.

        Adds dL/dtheta to every parameter's ``grads``; returns dL/dx
        (N, *event_shape).
        """
        z = self._take_cache("log_prob", "log_prob_backward")
        per_sample = dlog_q.reshape((-1,) + (1,) * (z.ndim - 1))  # (N, 1, ...)
        # log q = log p(z) + logdet: dL/dz = dL/dlog_q * score(z), dL/dlogdet = dL/dlog_q
        return self.flow.backward(per_sample * self.base.score(z), dlog_q)

    def nll(self, x):
        """Mean negative log-likelihood -(1/N) sum log q(x_n), in nats (0-d array)."""
        return -self.log_prob(x).mean()

    def nll_and_backward(self, x):
        """Mean NLL of the batch; adds its gradient to every parameter's ``grads``.

        One forward and one backward pass through the flow. The caller zeroes
        gradients (``zero_grads()``) before and steps the optimizer after.
        """
        self._check_array(x)  # shape and dtype only: no read-back in the training loop
        self.last_batch = ("nll", x)  # for a layer-by-layer re-run if training diverges
        log_q, _, _ = self._log_prob_pass(x)
        loss, dlog_q = metrics.nll_and_gradient(log_q)
        self.log_prob_backward(dlog_q)
        return loss

    # -- sampling ------------------------------------------------------------

    def sample(self, n, rng=None, temperature=1.0, dtype=None):
        """n samples x = f^{-1}(z), z ~ N(0, temperature^2 I); shape (n, *event_shape).

        ``rng`` may draw on either backend (``make_rng(seed, numpy)`` gives the
        same samples on a CPU and a GPU); z is moved to the parameters' device.
        Raises ``NonFiniteError`` naming the first layer that produced a NaN
        or infinity (a very high temperature, or parameters that blew up).
        """
        n = check_positive_int(n, "n")
        temperature = check_positive_float(temperature, "temperature")
        dtype = self._check_dtype(dtype)
        rng = rng if rng is not None else make_rng(None, self.xp)
        z = self._base_sample(n, rng, dtype, temperature)
        xp = get_array_module(z)
        # rows are independent samples: the inverse may run on a chunk of them at a time (see sample_chunk)
        chunk = n if self.sample_chunk is None else cpu_chunk(z, self.sample_chunk)
        with no_caches():  # no backward through sample (sample_and_log_prob keeps what one needs)
            x = xp.concatenate([self.flow.inverse(z[i : i + chunk])[0] for i in range(0, n, chunk)])
        self.flow.release_caches()  # and none an earlier pass left
        if not bool(xp.isfinite(x).all()):
            diagnosis = diagnose_sampling(self, z)
            raise NonFiniteError(
                f"sample produced NaN or infinite values (temperature {temperature}): {diagnosis}.", diagnosis
            )
        return x

    def sample_and_log_prob(self, n, rng=None, dtype=None):
        """(x, log q(x)) for n samples drawn through the inverse pass; keeps what ``sample_backward`` needs.

        Raises ``NonFiniteError`` naming the first layer that produced a NaN or
        infinity, as ``sample`` does.
        """
        n = check_positive_int(n, "n")
        dtype = self._check_dtype(dtype)
        rng = rng if rng is not None else make_rng(None, self.xp)
        z0 = self._base_sample(n, rng, dtype)
        x, log_q = self._sample_pass(z0)
        xp = get_array_module(x)
        if not bool(xp.isfinite(x).all() & xp.isfinite(log_q).all()):
            diagnosis = diagnose_sampling(self, z0)
            raise NonFiniteError(f"sample_and_log_prob produced NaN or infinite values: {diagnosis}.", diagnosis)
        return x, log_q

    def sample_with_log_prob(self, n, rng=None, dtype=None):
        """Deprecated name of ``sample_and_log_prob`` (the name nflows and zuko use)."""
        warnings.warn(
            "FlowModel.sample_with_log_prob is deprecated; call sample_and_log_prob (same arguments and results).",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.sample_and_log_prob(n, rng, dtype)

    def _sample_pass(self, z0):
        """The sampling pass without checks: (x, log q(x)) from base noise z0; keeps z0 for ``sample_backward``."""
        x, logdet_inv = self.flow.inverse(z0)  # logdet_inv = log|det dx/dz0|
        self._save_cache("sample", z0)
        return x, self.base.log_prob(z0) - logdet_inv  # (N,)

    def sample_backward(self, dx, dlog_q):
        """Back-propagate dL/dx and dL/dlog_q (N,) of the last ``sample_and_log_prob`` through the flow and base.

        Adds dL/dtheta to every parameter's ``grads``; returns dL/dz0 of the
        base noise (N, *event_shape), for a caller that needs it.
        """
        z0 = self._take_cache("sample", "sample_backward")
        # log q = log p(z0) - logdet_inv: dL/dlogdet_inv = -dL/dlog_q
        dz0 = self.flow.inverse_backward(dx, -dlog_q)
        return dz0 + dlog_q.reshape((-1,) + (1,) * (z0.ndim - 1)) * self.base.score(z0)

    def _base_sample(self, n, rng, dtype, temperature=1.0):
        """n base samples z, drawn where ``rng`` lives and moved to the parameters' module (n, *base shape)."""
        return to_device(self.base.sample(n, rng, dtype, temperature), self.xp)

    def reverse_kl_and_backward(self, energy, n, rng):
        """Monte Carlo E_q[log q(x) + U(x)] on n samples; adds its gradient to ``grads``.

        Args:
            energy: has ``energy(x)`` -> (N,) U(x) and ``grad(x)`` -> dU/dx.
            n: number of base samples. rng: random generator.

        Returns:
            the loss (0-d array); KL(q || p) = loss + ln Z.
        """
        n = check_positive_int(n, "n")
        if not (callable(getattr(energy, "energy", None)) and callable(getattr(energy, "grad", None))):
            raise TypeError(
                f"energy must have energy(x) and grad(x) (e.g. data.energy.get_energy('U1')); "
                f"got {type(energy).__name__}."
            )
        z0 = self._base_sample(n, rng, self.dtype)
        self.last_batch = ("reverse_kl", z0, energy)  # for a layer-by-layer re-run if training diverges
        x, log_q = self._sample_pass(z0)
        loss, dx, dlog_q = metrics.reverse_kl_and_gradient(x, log_q, energy)
        self.sample_backward(dx, dlog_q)
        return loss

    def bits_per_dim(self, log_prob, n_levels=None):
        """Convert log-likelihoods (nats per sample) to bits per dimension (``metrics.bits_per_dim``).

        Continuous data: bpd = -log q / (D ln 2). Discrete data read as
        ``n_levels`` bins per dimension (v = (x + u) / k): the same, plus the
        bin width correction D ln k, i.e. -(log q(v) - D ln k) / (D ln 2).
        """
        return metrics.bits_per_dim(log_prob, math.prod(self.event_shape), n_levels)

    def set_recompute(self, recompute):
        """Memory by inversion for every Flow inside this model: None or "invert"; returns self.

        See ``flows.flow.Flow``: with "invert", the backward pass rebuilds each
        layer's input from its output instead of keeping all activations, in
        both directions (maximum likelihood and reverse KL). Raises a
        ValueError naming the first layer that cannot rebuild its input, and
        why, before any Flow is changed.
        """
        from .flows.base import check_recompute
        from .flows.flow import Flow

        if recompute not in Flow.RECOMPUTE:
            raise ValueError(f"recompute must be one of {Flow.RECOMPUTE}; got {recompute!r}.")
        if recompute is not None:
            check_recompute(self, f"FlowModel.set_recompute({recompute!r})")
        for module in self.modules():
            if isinstance(module, Flow):
                module.recompute = recompute
        return self

    # -- where the parameters live ---------------------------------------------

    @property
    def dtype(self):
        """The parameters' dtype (float32 to train, float64 to check); new samples default to it."""
        first = self.first_param()
        return first.dtype if first is not None else DEFAULT_DTYPE

    @property
    def xp(self):
        """The array module (NumPy or CuPy) the parameters live on; make data and noise there."""
        first = self.first_param()
        return get_array_module(first) if first is not None else get_backend()

    # -- helpers -------------------------------------------------------------

    def _check_dtype(self, dtype):
        """The sampling dtype: the parameters' by default; a float dtype or a TypeError."""
        if dtype is None:
            return self.dtype
        try:
            kind = self.xp.dtype(dtype).kind
        except TypeError:
            kind = None
        if kind != "f":
            raise TypeError(f"dtype must be a float dtype (numpy.float32 or numpy.float64); got {dtype!r}.")
        return dtype
