"""ContinuousFlowModel: a velocity field over a base distribution, a density by the instantaneous change of variables.

Time runs from noise to data: t = 0 is the base N(0, I), t = 1 the data
(Lipman et al. 2023's convention, the one flow matching trains with). A
point moves along dx/dt = v(x, t). Direction, as for every minflow flow:
``forward`` maps data x (t = 1) to latent z (t = 0), integrating the ODE
backwards in time; ``inverse`` maps z to x, forwards in time.

The density along a trajectory obeys d log p_t(x_t) / dt = -div v(x_t, t)
(Chen et al. 2018, arXiv:1806.07366, Theorem 1; lesson 13 derives it from
the continuity equation). So, with z = x_0 and x = x_1,

    log q(x) = log p_Z(z) - int_0^1 div v(x_t, t) dt
    logdet   = log|det dz/dx| = -int_0^1 div v(x_t, t) dt

Both integrals are solved together with the position, (x, logdet) as one
state: from t = 1 down to t = 0 with d logdet/dt = div v (dt < 0, so logdet
collects -int div v). The divergence is exact (``VelocityField.divergence``);
the only error is the solver's, which shrinks as n_steps grows (check by
doubling it).
"""

from ..backend import DEFAULT_DTYPE, get_array_module, get_backend, make_rng
from ..checks import check_positive_float, check_positive_int
from ..distributions import StandardNormal
from ..nn.module import Module
from .ode import METHODS, odeint

__all__ = ["ContinuousFlowModel"]


class ContinuousFlowModel(Module):
    """A continuous normalizing flow: ``velocity`` v(x, t) over a standard normal base at t = 0.

    Args:
        velocity: a ``VelocityField`` (or anything with ``forward(x, t)``,
            ``divergence(x, t)`` and ``params``).
        n_steps: solver steps from t = 0 to t = 1 for ``log_prob`` and ``sample``.
        method: "rk4" (default) or "euler".

    Shapes:
        x: (N, D) -> log_prob: (N,); sample(n): (n, D).

    Caches:
        none: the ODE passes are for evaluation; training goes through the
        velocity field's own forward and backward (``flow_matching``).
    """

    def __init__(self, velocity, n_steps=64, method="rk4"):
        super().__init__()
        if not (callable(getattr(velocity, "forward", None)) and callable(getattr(velocity, "divergence", None))):
            raise TypeError(
                f"velocity must have forward(x, t) and divergence(x, t) (e.g. VelocityField(2)); "
                f"got {type(velocity).__name__}."
            )
        self.velocity = self.add_child("velocity", velocity)
        self.features = velocity.features
        self.base = StandardNormal((self.features,))
        self.event_shape = (self.features,)
        self.n_steps = check_positive_int(n_steps, "n_steps")
        if method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}; got {method!r}.")
        self.method = method

    # -- the two directions ------------------------------------------------

    def _solver(self, n_steps, method):
        return (check_positive_int(n_steps, "n_steps") if n_steps is not None else self.n_steps), (
            method or self.method
        )

    def _with_divergence(self, t, state):
        """f(t, (x, logdet)) = (v, div v): the augmented ODE."""
        return self.velocity.divergence(state[0], t)

    def _velocity_only(self, t, state):
        """f(t, (x,)) = (v,): the ODE of the positions alone."""
        return (self.velocity.forward(state[0], t),)

    def forward(self, x, n_steps=None, method=None):
        """(z, logdet): data x (t = 1) to latent z (t = 0); logdet = log|det dz/dx| = -int_0^1 div v dt, (N,)."""
        n_steps, method = self._solver(n_steps, method)
        xp = get_array_module(x)
        logdet = xp.zeros(x.shape[0], dtype=x.dtype)  # (N,), the state's second entry, 0 at t = 1
        z, logdet = odeint(self._with_divergence, (x, logdet), 1.0, 0.0, n_steps, method)
        return z, logdet

    def inverse(self, z, n_steps=None, method=None):
        """(x, logdet): latent z (t = 0) to data x (t = 1); logdet = log|det dx/dz| = +int_0^1 div v dt, (N,)."""
        n_steps, method = self._solver(n_steps, method)
        xp = get_array_module(z)
        logdet = xp.zeros(z.shape[0], dtype=z.dtype)
        return odeint(self._with_divergence, (z, logdet), 0.0, 1.0, n_steps, method)

    def transport(self, z, times, n_steps=None, method=None):
        """Positions of the points z (at t = 0) at each of ``times``, without the divergence.

        Args:
            z: (N, D) base points.
            times: increasing floats in [0, 1]; each must fall on the solver's
                grid of n_steps equal steps (e.g. times = k / n_steps).

        Returns:
            a list of (N, D) arrays, one per time.
        """
        n_steps, method = self._solver(n_steps, method)
        steps = [float(t) * n_steps for t in times]  # the step index of each time
        if any(abs(k - round(k)) > 1e-9 or not 0 <= k <= n_steps for k in steps) or len(set(steps)) != len(steps):
            raise ValueError(
                f"times must be distinct multiples of 1/n_steps = 1/{n_steps} in [0, 1]; got {list(times)}."
            )
        wanted = {round(k): i for i, k in enumerate(steps)}  # step index -> position in times
        out = [None] * len(times)

        def record(t, y):
            i = wanted.get(round(t * n_steps))
            if i is not None:
                out[i] = y[0]

        odeint(self._velocity_only, (z,), 0.0, 1.0, n_steps, method, callback=record)
        return out

    # -- density and samples ---------------------------------------------------

    def log_prob(self, x, n_steps=None, method=None):
        """log q(x) = log p_Z(z) + log|det dz/dx| per sample, shape (N,)."""
        self.check_data(x)
        z, logdet = self.forward(x, n_steps, method)
        return self.base.log_prob(z) + logdet

    def sample(self, n, rng=None, temperature=1.0, dtype=None, n_steps=None, method=None):
        """n samples x at t = 1 from z ~ N(0, temperature^2 I) at t = 0; shape (n, D).

        Integrates v only (no divergence): about a third of the work of ``log_prob``.
        """
        n = check_positive_int(n, "n")
        temperature = check_positive_float(temperature, "temperature")
        n_steps, method = self._solver(n_steps, method)
        rng = rng if rng is not None else make_rng(None, self._param_module())
        z = self.base.sample(n, rng, dtype or self._param_dtype(), temperature)
        (x,) = odeint(self._velocity_only, (z,), 0.0, 1.0, n_steps, method)
        return x

    def sample_and_log_prob(self, n, rng=None, dtype=None, n_steps=None, method=None):
        """(x, log q(x)) for n samples: one pass from t = 0 to 1 with the divergence."""
        n = check_positive_int(n, "n")
        rng = rng if rng is not None else make_rng(None, self._param_module())
        z = self.base.sample(n, rng, dtype or self._param_dtype())
        x, logdet_inv = self.inverse(z, n_steps, method)
        return x, self.base.log_prob(z) - logdet_inv

    def check_data(self, x, name="x"):
        """Raise a clear error unless x is a finite float array of shape (N, D)."""
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise TypeError(f"{name} must be an array of shape (N, {self.features}); got {type(x).__name__}.")
        if x.dtype.kind != "f":
            raise TypeError(
                f"{name} must be a float array; got dtype {x.dtype}. Convert it, e.g. {name}.astype(numpy.float32)."
            )
        if x.ndim != 2 or x.shape[1] != self.features or x.shape[0] == 0:
            raise ValueError(f"{name} must have shape (N, {self.features}) with N >= 1; got {tuple(x.shape)}.")
        if not bool(get_array_module(x).isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or infinite values; clean the data first (e.g. drop those rows).")

    def _param_dtype(self):
        params = self.params
        return next(iter(params.values())).dtype if params else DEFAULT_DTYPE

    def _param_module(self):
        params = self.params
        return get_array_module(next(iter(params.values()))) if params else get_backend()
