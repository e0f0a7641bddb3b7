"""Radial flow (Rezende & Mohamed 2015, "Variational Inference with Normalizing Flows", arXiv:1505.05770).

Direction: forward maps data x to latent z. The paper's closed-form map runs
from the base to the data (the sampling direction), so here it is ``inverse``;
``forward`` (the density direction) solves for the radius.

    alpha = softplus(alpha_raw) > 0,  beta = -alpha + softplus(beta_raw) > -alpha   (appendix A.2)
    inverse:  x = z + beta * h(r) * (z - z0),  r = |z - z0|,  h(r) = 1 / (alpha + r)
    forward:  r solves r * (1 + beta / (alpha + r)) = |x - z0|, then
              z = z0 + (x - z0) / (1 + beta / (alpha + r))
    log|det dx/dz| = (D - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r)

With sp = softplus(beta_raw) (so beta = sp - alpha) the two factors are
1 + beta h = (r + sp) / (alpha + r) and 1 + beta h + beta h' r =
(r (2 alpha + r) + alpha sp) / (alpha + r)^2, sums of positive terms: the
log-det is computed without cancellation, and the radius equation
r^2 + (sp - |x - z0|) r - alpha |x - z0| = 0 has exactly one root r >= 0.
"""

from ..backend import DEFAULT_DTYPE, get_array_module, sigmoid, softplus, uniform
from .base import SamplingMapBijection
from .shapes import check_vectors

__all__ = ["Radial"]


class Radial(SamplingMapBijection):
    """One radial layer, x = z + beta (z - z0) / (alpha + |z - z0|) in the sampling direction (``inverse``).

    Args:
        features: D, the number of features.
        dtype: parameter dtype (float32 to train, float64 to check gradients).
        rng: random generator for the initialisation: z0, alpha_raw and
            beta_raw ~ U(-1/sqrt(D), 1/sqrt(D)), as in Pyro's radial flow.

    Parameters:
        z0 (D,): the centre; alpha_raw (1,), beta_raw (1,): raw parameters
        of alpha = softplus(alpha_raw) and beta = -alpha + softplus(beta_raw).

    Shapes:
        x, z: (N, D); logdet: (N,).

    Caches:
        inverse keeps d = z - z0 (N, D) and r = |d| (N,): every derivative
        is a function of them. forward keeps the same two quantities of the
        solved z, for its backward.

    Reference:
        Rezende & Mohamed (2015), section 4.1 and appendix A.2.

    Note:
        ``forward`` inverts the map through the radius: the paper solves the
        scalar equation r (1 + beta h(r)) = |x - z0| numerically; it is the
        quadratic r^2 + (sp - rho) r - alpha rho = 0 (rho = |x - z0|), whose
        non-negative root is taken in closed form, in the branch of the
        quadratic formula that has no cancellation. So no iteration, no
        tolerance and no failure: the round trip is exact to a few ulps.
        ``backward`` differentiates through it by the implicit function
        theorem: dz/dx is the inverse of the sampling Jacobian
        s I + c n n^T (n = d / r), applied by the Sherman-Morrison formula.
        At r = 0 exactly (a point on the centre) the unit vector n is taken
        as 0; the map is smooth there, only |d| is not.
    """

    stateless = True

    def __init__(self, features, dtype=DEFAULT_DTYPE, *, rng):
        super().__init__()
        if int(features) != features or features < 1:
            raise ValueError(f"Radial expects features (D) to be a positive integer; got {features!r}.")
        self.features = int(features)
        bound = 1.0 / self.features**0.5
        self.add_param("z0", uniform((self.features,), -bound, bound, dtype, rng))
        self.add_param("alpha_raw", uniform((1,), -bound, bound, dtype, rng))
        self.add_param("beta_raw", uniform((1,), -bound, bound, dtype, rng))

    def alpha_beta(self):
        """(alpha, beta) as (1,) arrays: alpha > 0 and beta > -alpha for any raw values."""
        alpha = softplus(self._own_params["alpha_raw"])
        return alpha, softplus(self._own_params["beta_raw"]) - alpha

    def _check_input(self, x, name):
        fix = "Flatten images to vectors first, or build Radial(features) with D equal to axis 1 of the data."
        check_vectors(x, name, self.features, f"Radial({self.features})", fix)

    def _logdet(self, r, alpha, sp):
        """log|det dx/dz| = (D - 1) log(r + sp) + log(r (2 alpha + r) + alpha sp) - (D + 1) log(alpha + r)."""
        xp = get_array_module(r)
        d = self.features
        return (d - 1) * xp.log(r + sp) + xp.log(r * (2 * alpha + r) + alpha * sp) - (d + 1) * xp.log(alpha + r)

    @staticmethod
    def _unit(d, r):
        """n = d / r (N, D), and 0 where r = 0."""
        xp = get_array_module(d)
        safe = xp.where(r > 0, r, 1)
        return d / safe[:, None]

    # -- sampling direction: closed form ---------------------------------------

    def inverse(self, z):
        self._check_input(z, "z")
        xp = get_array_module(z)
        alpha = softplus(self._own_params["alpha_raw"])  # (1,)
        sp = softplus(self._own_params["beta_raw"])  # (1,), beta = sp - alpha
        d = z - self._own_params["z0"]  # (N, D)
        r = xp.sqrt((d * d).sum(axis=1))  # (N,)
        x = z + ((sp - alpha) / (alpha + r))[:, None] * d  # (N, D)
        self._save_cache("inverse", (d, r))
        return x, self._logdet(r, alpha, sp)

    def _sampling_vjp(self, d, r, dx, dlogdet):
        """Gradients of the sampling map and its log-det, given dL/dx and dL/dlogdet.

        Returns dL/dz (N, D) and a dict of raw-parameter gradients (not yet added).
        """
        araw, braw = self._own_params["alpha_raw"], self._own_params["beta_raw"]
        alpha, sp = softplus(araw), softplus(braw)  # (1,) each
        D = self.features
        big_a = r + sp  # (N,)
        big_q = r * (2 * alpha + r) + alpha * sp  # (N,)
        big_r = alpha + r  # (N,)
        coef = (sp - alpha) / big_r  # (N,), beta h
        # logdet = (D - 1) log A + log Q - (D + 1) log R
        d_a = dlogdet * (D - 1) / big_a
        d_q = dlogdet / big_q
        d_r = -dlogdet * (D + 1) / big_r
        # x = z + coef d
        dz = dx.copy()  # (N, D)
        dd = coef[:, None] * dx  # (N, D)
        dcoef = (dx * d).sum(axis=1)  # (N,)
        # coef = (sp - alpha) / R
        dsp = dcoef / big_r
        dalpha = -dcoef / big_r
        d_r = d_r - dcoef * coef / big_r
        # A = r + sp
        dr = d_a
        dsp = dsp + d_a
        # Q = r (2 alpha + r) + alpha sp
        dr = dr + d_q * (2 * alpha + 2 * r)
        dalpha = dalpha + d_q * (2 * r + sp)
        dsp = dsp + d_q * alpha
        # R = alpha + r
        dr = dr + d_r
        dalpha = dalpha + d_r
        # r = |d|
        dd += dr[:, None] * self._unit(d, r)
        # d = z - z0
        dz += dd
        dz0 = -dd.sum(axis=0)  # (D,)
        # sp = softplus(beta_raw), alpha = softplus(alpha_raw)
        dbeta_raw = dsp.sum(keepdims=True) * sigmoid(braw)  # (1,)
        dalpha_raw = dalpha.sum(keepdims=True) * sigmoid(araw)  # (1,)
        return dz, {"z0": dz0, "alpha_raw": dalpha_raw, "beta_raw": dbeta_raw}

    # -- density direction: the radius from a quadratic -------------------------

    def forward(self, x):
        self._check_input(x, "x")
        xp = get_array_module(x)
        alpha = softplus(self._own_params["alpha_raw"])  # (1,)
        sp = softplus(self._own_params["beta_raw"])  # (1,)
        z0 = self._own_params["z0"]
        dx = x - z0  # (N, D) = (z - z0) * (r + sp) / (alpha + r)
        rho = xp.sqrt((dx * dx).sum(axis=1))  # (N,)
        # r^2 + (sp - rho) r - alpha rho = 0: the non-negative root, cancellation-free branch
        half_b = 0.5 * (rho - sp)  # (N,)
        root = xp.sqrt(half_b * half_b + alpha * rho)  # (N,)
        r = xp.where(half_b >= 0, half_b + root, alpha * rho / xp.where(root - half_b > 0, root - half_b, 1))
        d = dx * ((alpha + r) / (r + sp))[:, None]  # (N, D), z - z0
        self._save_cache("forward", (d, r))
        return z0 + d, -self._logdet(r, alpha, sp)

    def backward(self, dz, dlogdet):
        # z = G^{-1}(x) with G the sampling map; logdet = -log det(dG/dz) at z.
        d, r = self._take_cache("forward", "backward")
        alpha = softplus(self._own_params["alpha_raw"])  # (1,)
        sp = softplus(self._own_params["beta_raw"])  # (1,)
        D = self.features
        n = self._unit(d, r)  # (N, D)
        big_a = r + sp
        big_q = r * (2 * alpha + r) + alpha * sp
        big_r = alpha + r
        # total dL/dz of the latent, the log-det counted through r(z)
        log_g_prime = (D - 1) / big_a + (2 * alpha + 2 * r) / big_q - (D + 1) / big_r  # (N,), d(log g)/dr
        dz_total = dz - (dlogdet * log_g_prime)[:, None] * n  # (N, D)
        # J = s I + c n n^T with s = A / R, c = -beta r / R^2, s + c = Q / R^2:
        # dL/dx = J^{-1} dz_total = (dz_total - (c / (s + c)) (n.dz_total) n) / s   (J is symmetric)
        c_over_q = -(sp - alpha) * r / big_q  # (N,)
        dx = (dz_total - (c_over_q * (n * dz_total).sum(axis=1))[:, None] * n) * (big_r / big_a)[:, None]  # (N, D)
        # parameters: dz/dtheta = -J^{-1} dG/dtheta, and logdet = -log det(J)
        _, grads = self._sampling_vjp(d, r, -dx, -dlogdet)
        self._add_grads(grads)
        return dx
