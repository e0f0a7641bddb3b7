"""FlowModel: a flow and a base distribution, i.e. a density you can train and sample.

Direction: the flow's forward maps data x to latent z. By the change of
variables,

    log q(x) = log p_Z(f(x)) + log|det df/dx|

Maximum likelihood minimises L = -(1/N) sum_n log q(x_n); its gradient needs
only one backward pass through the flow, with

    dL/dz = -(1/N) score(z) = z / N   (standard normal),    dL/dlogdet = -1/N.

Reverse KL (fitting an energy U, Rezende & Mohamed 2015) samples instead:
x = f^{-1}(z0), z0 ~ p_Z, log q(x) = log p_Z(z0) - log|det dx/dz0|, and
minimises E[log q(x) + U(x)] through the inverse pass.
"""

import math

from .backend import DEFAULT_DTYPE, get_array_module, get_backend, make_rng, to_device
from .diagnostics import NonFiniteError, check_positive_float, check_positive_int, diagnose_nll, diagnose_sampling
from .flows.base import Bijection
from .nn.module import Module

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
    """

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
            z, logdet = self.flow.forward(x)
        except Exception as err:
            diagnosis = diagnose_nll(self, x, backward=False)
            if diagnosis.found and diagnosis.stage != "error":  # a NaN upstream made a later layer fail
                raise NonFiniteError(f"log_prob failed ({type(err).__name__}) after {diagnosis}.", diagnosis) from err
            raise
        log_q = self.base.log_prob(z) + logdet  # (N,)
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
        xp = get_array_module(x)
        z, logdet = self.flow.forward(x)
        log_q = self.base.log_prob(z) + logdet  # (N,)
        n = x.shape[0]
        dz = -self.base.score(z) / n  # dL/dz for L = -mean(log p(z) + logdet)
        dlogdet = xp.full(n, -1.0 / n, dtype=logdet.dtype)
        self.flow.backward(dz, dlogdet)
        return -log_q.mean()

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
        rng = rng if rng is not None else make_rng(None, self._param_module())
        z = self._base_sample(n, rng, dtype, temperature)
        x = self.flow.inverse(z)[0]
        xp = get_array_module(x)
        if not bool(xp.isfinite(x).all()):
            diagnosis = diagnose_sampling(self, z)
            raise NonFiniteError(
                f"sample produced NaN or infinite values (temperature {temperature}): {diagnosis}.", diagnosis
            )
        return x

    def sample_with_log_prob(self, n, rng=None, dtype=None):
        """(x, log q(x)) for n samples drawn through the inverse pass.

        Raises ``NonFiniteError`` naming the first layer that produced a NaN or
        infinity, as ``sample`` does.
        """
        n = check_positive_int(n, "n")
        dtype = self._check_dtype(dtype)
        rng = rng if rng is not None else make_rng(None, self._param_module())
        z0 = self._base_sample(n, rng, dtype)
        x, logdet_inv = self.flow.inverse(z0)  # logdet_inv = log|det dx/dz0|
        log_q = self.base.log_prob(z0) - logdet_inv  # (n,)
        xp = get_array_module(x)
        if not bool(xp.isfinite(x).all() & xp.isfinite(log_q).all()):
            diagnosis = diagnose_sampling(self, z0)
            raise NonFiniteError(f"sample_with_log_prob produced NaN or infinite values: {diagnosis}.", diagnosis)
        return x, log_q

    def _base_sample(self, n, rng, dtype, temperature=1.0):
        """n base samples z, drawn where ``rng`` lives and moved to the parameters' module (n, *base shape)."""
        return to_device(self.base.sample(n, rng, dtype, temperature), self._param_module())

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
        xp = self._param_module()
        z0 = self._base_sample(n, rng, self._param_dtype())
        self.last_batch = ("reverse_kl", z0, energy)  # for a layer-by-layer re-run if training diverges
        x, logdet_inv = self.flow.inverse(z0)
        log_q = self.base.log_prob(z0) - logdet_inv  # (N,)
        u = energy.energy(x)
        # L = (1/N) sum [log p(z0) - logdet_inv + U(x)], z0 fixed noise
        dx = energy.grad(x) / n
        dlogdet = xp.full(n, -1.0 / n, dtype=logdet_inv.dtype)
        self.flow.inverse_backward(dx, dlogdet)
        return (log_q + u).mean()

    def bits_per_dim(self, log_prob, n_levels=None):
        """Convert log-likelihoods (nats per sample) to bits per dimension.

        Continuous data: bpd = -log q / (D ln 2). Discrete data read as
        ``n_levels`` bins per dimension (v = (x + u) / k): the same, plus the
        bin width correction D ln k, i.e. -(log q(v) - D ln k) / (D ln 2).
        """
        if n_levels is not None:
            check_positive_int(n_levels, "n_levels")
        d = math.prod(self.event_shape)
        correction = d * math.log(n_levels) if n_levels else 0.0
        return -(log_prob - correction) / (d * math.log(2))

    def set_recompute(self, recompute):
        """Memory by inversion for every Flow inside this model: None or "invert".

        See ``flows.flow.Flow``: with "invert", the backward pass rebuilds each
        layer's input by its inverse instead of keeping all activations.
        """
        from .flows.flow import Flow

        def visit(module):
            if isinstance(module, Flow):
                if recompute not in Flow.RECOMPUTE:
                    raise ValueError(f"recompute must be one of {Flow.RECOMPUTE}; got {recompute!r}.")
                module.recompute = recompute
            for child in module._children.values():
                visit(child)

        visit(self)
        return self

    # -- helpers -------------------------------------------------------------

    def _check_dtype(self, dtype):
        """The sampling dtype: the parameters' by default; a float dtype or a TypeError."""
        if dtype is None:
            return self._param_dtype()
        try:
            kind = self._param_module().dtype(dtype).kind
        except TypeError:
            kind = None
        if kind != "f":
            raise TypeError(f"dtype must be a float dtype (numpy.float32 or numpy.float64); got {dtype!r}.")
        return dtype

    def _param_dtype(self):
        params = self.params
        return next(iter(params.values())).dtype if params else DEFAULT_DTYPE

    def _param_module(self):
        params = self.params
        return get_array_module(next(iter(params.values()))) if params else get_backend()
