"""Planar flow (Rezende & Mohamed 2015, "Variational Inference with Normalizing Flows", arXiv:1505.05770).

Direction: forward maps data x to latent z. The paper's closed-form map runs
the other way, from the base to the data (the sampling direction), so here it
is ``inverse``, and ``forward`` (the density direction) is solved numerically.

    u_hat = u + (m(w.u) - w.u) * w / |w|^2,   m(a) = -1 + softplus(a)   (appendix A.1)
    inverse:  x = z + u_hat * tanh(w.z + b)                   closed form
    forward:  z = x - u_hat * tanh(a), a solving a + m * tanh(a) = w.x + b
    log|det dx/dz| = log|1 + u_hat.psi(z)|, psi(z) = (1 - tanh^2(w.z + b)) * w

The constraint makes w.u_hat = m(w.u) > -1, so 1 + u_hat.psi > 0 and the scalar
equation for a is strictly increasing: the map is invertible and the solve has
exactly one root. Written without cancellation, 1 + u_hat.psi = tanh^2 + (1 -
tanh^2) * softplus(w.u), a sum of two non-negative terms.
"""

from ..backend import DEFAULT_DTYPE, get_array_module, sigmoid, softplus, uniform, zeros
from .base import SamplingMapBijection
from .shapes import check_vectors

__all__ = ["Planar", "PlanarInverseError"]

SQRT2 = 2.0**0.5


class PlanarInverseError(RuntimeError):
    """Raised when the numerical inverse of a planar layer does not converge."""


class Planar(SamplingMapBijection):
    """One planar layer, x = z + u_hat * tanh(w.z + b) in the sampling direction (``inverse``).

    Args:
        features: D, the number of features.
        dtype: parameter dtype (float32 to train, float64 to check gradients).
        rng: random generator for the initialisation (P2: u ~ U(-sqrt 2, sqrt 2)^D,
            w ~ U(-1, 1)^D, b = 0).
        tol: the forward solve stops when |a + m tanh(a) - (w.x + b)| <= tol * (1 + |w.x + b|).
        max_iter: iterations of the forward solve before ``PlanarInverseError``.

    Parameters:
        u (D,), w (D,), b (1,): raw parameters; ``u_hat()`` is the constrained u.

    Shapes:
        x, z: (N, D); logdet: (N,).

    Caches:
        inverse keeps z and tanh(w.z + b), both (N, D) / (N,): the backward needs
        z for dw and tanh for every derivative of tanh; u_hat and the other D-sized
        quantities are recomputed from the parameters (cheaper than caching them).
        forward keeps the solved z and its tanh for the same reason.

    Reference:
        Rezende & Mohamed (2015), section 4.1 and appendix A.1.

    Note:
        ``forward`` is a numerical inverse. It solves g(a) = a + m tanh(a) - y = 0,
        y = w.x + b, m = w.u_hat, for all N samples at once, in float64 whatever
        the input dtype, by Newton's method safeguarded by bisection: the root
        lies in [y - |m|, y + |m|] (|tanh| <= 1), the bracket shrinks every
        iteration, and a Newton step that leaves it, or that is not at most
        half the step before last, is replaced by the midpoint (the rule of
        Numerical Recipes' rtsafe: with large w.u_hat plain Newton can bounce
        between the two sides of tanh's inflection and stall).
        g is increasing (g' = 1 + m (1 - tanh^2) > 0), so the root is unique;
        where w.u < -37, m rounds to -1 in float64, g' vanishes at a = 0 and
        only the bisection steps make progress there (still converging). It
        stops when every residual is below ``tol`` (default 1e-12, relative to
        1 + |y|), reading one boolean back per iteration (a solver has to know
        when to stop), then takes one more Newton step where it is a small
        correction (quadratic convergence: a to rounding level), and raises ``PlanarInverseError`` after ``max_iter``
        iterations. ``backward`` differentiates through the solve by the
        implicit function theorem: dz/dx is the inverse of the sampling
        Jacobian I + u_hat psi^T, applied by the Sherman-Morrison formula.
    """

    stateless = True  # forward is a numerical solve, but a function of x and the parameters alone

    def __init__(self, features, dtype=DEFAULT_DTYPE, *, rng, tol=1e-12, max_iter=100):
        super().__init__()
        if int(features) != features or features < 1:
            raise ValueError(f"Planar expects features (D) to be a positive integer; got {features!r}.")
        self.features = int(features)
        self.tol = tol
        self.max_iter = int(max_iter)
        self.add_param("u", uniform((self.features,), -SQRT2, SQRT2, dtype, rng))
        self.add_param("w", uniform((self.features,), -1.0, 1.0, dtype, rng))
        self.add_param("b", zeros((1,), dtype, get_array_module(self._own_params["u"])))

    # -- the constraint ------------------------------------------------------

    def _constrained(self):
        """u_hat (D,), m = w.u_hat (0-d), softplus(w.u) (0-d) and the pieces their gradient needs."""
        u, w = self._own_params["u"], self._own_params["w"]
        wu = w @ u  # (), w.u
        wn2 = w @ w  # (), |w|^2
        sp = softplus(wu)  # (), m = sp - 1 > -1
        k = (sp - 1 - wu) / wn2  # (), u_hat = u + k w
        return u + k * w, sp - 1, sp, wu, wn2, k

    def u_hat(self):
        """The constrained u (D,): w.u_hat = -1 + softplus(w.u) > -1 for any u, w."""
        return self._constrained()[0]

    def _check_input(self, x, name):
        fix = "Flatten images to vectors first, or build Planar(features) with D equal to axis 1 of the data."
        check_vectors(x, name, self.features, f"Planar({self.features})", fix)

    # -- sampling direction: closed form ---------------------------------------

    def inverse(self, z):
        self._check_input(z, "z")
        xp = get_array_module(z)
        u_hat, _, sp, _, _, _ = self._constrained()
        t = xp.tanh(z @ self._own_params["w"] + self._own_params["b"])  # (N,)
        # t u_hat^T as (N, 1) @ (1, D): one multiplication per entry, as t[:, None] * u_hat, but faster for small D
        x = z + t[:, None] @ u_hat[None, :]  # (N, D)
        t2 = t * t  # (N,)
        det = t2 + (1 - t2) * sp  # (N,), = 1 + u_hat.psi, no cancellation
        self._save_cache("inverse", (z, t))
        return x, xp.log(det)

    def _sampling_vjp(self, z, t, dx, dlogdet):
        """Gradients of x = z + u_hat tanh(w.z + b) and its log-det, given dL/dx and dL/dlogdet.

        Returns dL/dz (N, D) and a dict of raw-parameter gradients (not yet added).
        """
        u, w = self._own_params["u"], self._own_params["w"]
        u_hat, m, sp, wu, wn2, k = self._constrained()
        t2 = t * t  # (N,)
        one_t2 = 1 - t2  # (N,), tanh'
        det = t2 + one_t2 * sp  # (N,)
        # logdet = log(det)
        ddet = dlogdet / det  # (N,)
        # x = z + t u_hat
        dt = dx @ u_hat  # (N,)
        du_hat = t @ dx  # (D,)
        # det = t^2 + (1 - t^2) sp: d det/dt = 2 t (1 - sp) = -2 t m
        dt = dt - 2 * ddet * t * m
        dsp = ddet @ one_t2  # ()
        # t = tanh(a), a = w.z + b
        da = dt * one_t2  # (N,)
        dz = dx + da[:, None] @ w[None, :]  # (N, D), dx through the identity path and da through a (outer product)
        dw = da @ z  # (D,)
        db = da.sum(keepdims=True)  # (1,)
        # u_hat = u + k w, k = (sp - 1 - wu) / |w|^2
        dk = du_hat @ w  # ()
        dw = dw + k * du_hat
        dsp = dsp + dk / wn2
        dwu = -dk / wn2
        dwn2 = -dk * k / wn2
        # sp = softplus(wu)
        dwu = dwu + dsp * sigmoid(wu)
        # wu = w.u, wn2 = w.w
        du = du_hat + dwu * w  # u reaches the loss through u_hat and through wu
        dw = dw + dwu * u + 2 * dwn2 * w
        return dz, {"u": du, "w": dw, "b": db}

    # -- density direction: numerical ------------------------------------------

    def _solve(self, y, m):
        """The root a of a + m tanh(a) = y, elementwise, in float64 (see the class Note)."""
        xp = get_array_module(y)
        lo, hi = y - xp.abs(m), y + xp.abs(m)  # (N,) bracket: |tanh| <= 1
        a = xp.clip(y - m * xp.tanh(y), lo, hi)  # (N,) one fixed-point step as the start
        step, step_before = hi - lo, hi - lo  # (N,) lengths of the last two steps
        scale = self.tol * (1 + xp.abs(y))  # (N,)
        for _ in range(self.max_iter):
            t = xp.tanh(a)
            g = a + m * t - y  # (N,) residual, increasing in a
            slope = 1 + m * (1 - t * t)  # (N,) g'(a) >= 0; it vanishes only at a triple root (m = -1, a = 0)
            newton = a - g / xp.where(slope > 0, slope, 1)
            if bool(xp.all(xp.abs(g) <= scale)):
                # converged; one last Newton step where it is a small correction takes a to rounding level
                polish = (slope > 0) & (xp.abs(newton - a) <= 1e-6 * (1 + xp.abs(a)))
                return xp.where(polish, newton, a)
            lo = xp.where(g < 0, a, lo)
            hi = xp.where(g > 0, a, hi)
            # Newton if it stays inside the bracket and at most halves the step before last
            # (Numerical Recipes' rtsafe); else bisect, so the bracket at least halves
            use_newton = (slope > 0) & (newton > lo) & (newton < hi) & (2 * xp.abs(newton - a) <= step_before)
            a_next = xp.where(use_newton, newton, 0.5 * (lo + hi))
            step, step_before = xp.abs(a_next - a), step
            a = a_next
        worst = float(xp.max(xp.abs(a + m * xp.tanh(a) - y) / (1 + xp.abs(y))))
        raise PlanarInverseError(
            f"Planar.forward: the solve for w.z did not converge in {self.max_iter} iterations "
            f"(worst relative residual {worst:.2e}, tolerance {self.tol:.0e}; w.u_hat = {float(m):.6f}). "
            "Raise max_iter, or tol if float64 cannot reach it for such large inputs."
        )

    def forward(self, x):
        self._check_input(x, "x")
        xp = get_array_module(x)
        f64 = xp.float64
        u_hat, m, sp, _, _, _ = self._constrained()
        w, b = self._own_params["w"].astype(f64), self._own_params["b"].astype(f64)
        y = x.astype(f64) @ w + b  # (N,) = a + m tanh(a)
        a = self._solve(y, m.astype(f64))  # (N,)
        t = xp.tanh(a).astype(x.dtype)  # (N,)
        z = x - t[:, None] * u_hat  # (N, D)
        det = t * t + (1 - t * t) * sp  # (N,), of the sampling map at z
        self._save_cache("forward", (z, t))
        return z, -xp.log(det)

    def backward(self, dz, dlogdet):
        # z = G^{-1}(x) with G the sampling map; logdet = -log det(dG/dz) at z.
        z, t = self._take_cache("forward", "backward")
        u_hat, m, sp, _, _, _ = self._constrained()
        w = self._own_params["w"]
        one_t2 = 1 - t * t  # (N,)
        det = t * t + one_t2 * sp  # (N,) = 1 + u_hat.psi
        psi = one_t2[:, None] * w  # (N, D)
        # total dL/dz of the latent, the log-det counted through z: d log det / dz = -2 t m (1 - t^2) w / det
        dz_total = dz + (dlogdet * 2 * t * m * one_t2 / det)[:, None] * w  # (N, D)
        # dL/dx = J^{-T} dz_total, J^T = I + psi u_hat^T, by Sherman-Morrison
        dx = dz_total - psi * ((dz_total @ u_hat) / det)[:, None]  # (N, D)
        # parameters: dz/dtheta = -J^{-1} dG/dtheta, and logdet = -log det(J)
        _, grads = self._sampling_vjp(z, t, -dx, -dlogdet)
        self._add_grads(grads)
        return dx
