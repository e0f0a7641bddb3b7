"""TarFlow block: an affine autoregressive flow over tokens, conditioned by a causal Transformer.

Zhai et al. (2025), "Normalizing Flows are Capable Generative Models",
ICML 2025, arXiv:2412.06329, section 3.1: MAF's affine autoregressive layer
(Papamakarios et al. 2017, arXiv:1705.07057) with a causal Transformer as the
conditioner. Direction: forward maps data x to latent z. For tokens
x_1..x_T (each of D values):

    u = (s, x_1, ..., x_{T-1})        the sequence shifted by one; s a learned start token
    mu_t, a_t = net(u)_t              causal: they depend on u_1..u_t = s, x_1..x_{t-1} only
    alpha_t = B tanh(a_t / B)         log-scale, softly bounded by B
    forward:  z_t = (x_t - mu_t) * exp(-alpha_t)          all tokens at once
    inverse:  x_t = z_t * exp(alpha_t) + mu_t             t = 1, ..., T in turn (x_{<t} first)
    log|det dz/dx| = -sum_t sum_d alpha_{t,d}

The shift makes dz/dx block lower triangular in the token order with
diagonal blocks diag(exp(-alpha_t)), so the log-det is that sum. Without it
mu_t and alpha_t would see x_t itself: the true Jacobian would gain terms the
formula ignores, and training would shrink exp(-alpha) for free ("exploit
the log-det").
"""

from ..backend import get_array_module, zeros
from ..nn.causal_transformer import CausalTransformer
from .base import Bijection

__all__ = ["TarFlowBlock"]


class TarFlowBlock(Bijection):
    """One TarFlow flow block: z_t = (x_t - mu(x_<t)) * exp(-alpha(x_<t)).

    Args:
        net: the conditioner, a ``CausalTransformer`` from D to 2D values per
            token over T tokens (mu, then a); built with ``out_init="zeros"``
            the block starts as the identity. Its parameters are the block's
            ``net.*``; the start token takes its dtype.
        alpha_bound: B in alpha = B tanh(a / B) (the scale of one block stays
            within exp(+-B); about the identity for |a| << B).

    Shapes:
        x, z: (N, T, D); logdet: (N,); start token ``start``: (D,).

    Caches:
        forward keeps z, exp(-alpha) and tanh(a / B) (N, T, D) each: the
        backward needs z for dz/dalpha = -z, exp(-alpha) for dz/dx_t and
        dz/dmu, and tanh for dalpha/da; the conditioner keeps its own.
        inverse keeps x (N, T, D) only: ``inverse_backward`` reruns the
        conditioner on it.

    Reference:
        Zhai et al. (2025), arXiv:2412.06329, section 3.1 and Algorithm 1.

    Note:
        The inverse is exact but sequential: T conditioner steps through
        the key/value cache. ``inverse_backward`` solves the transposed
        triangular system of the inverse by T + 1 full conditioner passes
        (see there). The conditioner keeps the cache of its most recent pass
        only, so running one direction invalidates the other direction's
        backward (a clear error).
    """

    stateless = True  # the conditioner is a plain network: its caches (and key/value cache) are the only state

    def __init__(self, net, alpha_bound=2.0):
        super().__init__()
        if not isinstance(net, CausalTransformer):
            raise TypeError(f"TarFlowBlock expects a CausalTransformer as its conditioner; got {type(net).__name__}.")
        if net.out_features != 2 * net.in_features:
            raise ValueError(
                f"TarFlowBlock's conditioner must give 2D values per token (mu and a) for D = {net.in_features}; "
                f"got out_features={net.out_features}. Build it as CausalTransformer(D, 2 * D, T, ...)."
            )
        self.features, self.n_tokens, self.alpha_bound = net.in_features, net.n_tokens, float(alpha_bound)
        self.net = self.add_child("net", net)
        dtype = self.net.params["head.W"].dtype
        self.add_param("start", zeros((self.features,), dtype))

    def _check(self, x, name):
        if x.ndim != 3 or x.shape[1:] != (self.n_tokens, self.features):
            raise ValueError(
                f"TarFlowBlock expects {name} of shape (N, {self.n_tokens}, {self.features}) (tokens); "
                f"got {tuple(x.shape)}. Turn images into tokens with flows.Patchify first."
            )

    # -- the shift by one token ----------------------------------------------------

    def _shift(self, x):
        """u = (start, x_1, ..., x_{T-1}): (N, T, D) -> (N, T, D)."""
        xp = get_array_module(x)
        start = xp.broadcast_to(self._own_params["start"], (x.shape[0], 1, self.features))  # (N, 1, D)
        return xp.concatenate([start, x[:, :-1]], axis=1)  # (N, T, D)

    def _shift_backward(self, du):
        """dx of u = shift(x): dx_t = du_{t+1}, dx_T = 0; dstart += sum_n du_1."""
        xp = get_array_module(du)
        self._own_grads["start"] += du[:, 0].sum(axis=0)  # (D,)
        return xp.concatenate([du[:, 1:], xp.zeros_like(du[:, :1])], axis=1)  # (N, T, D)

    # -- the conditioner -------------------------------------------------------------

    def _conditioner(self, x):
        """mu, alpha, tanh(a / B), each (N, T, D), from a full causal pass over shift(x)."""
        xp = get_array_module(x)
        h = self.net.forward(self._shift(x))  # (N, T, 2D)
        mu, a = h[..., : self.features], h[..., self.features :]
        tanh_a = xp.tanh(a / self.alpha_bound)
        return mu, self.alpha_bound * tanh_a, tanh_a

    def _conditioner_backward(self, dmu, dalpha, tanh_a):
        """dx through mu, alpha = net(shift(x)); parameter gradients accumulate."""
        xp = get_array_module(dmu)
        da = dalpha * (1 - tanh_a * tanh_a)  # alpha = B tanh(a / B): dalpha/da = 1 - tanh^2
        du = self.net.backward(xp.concatenate([dmu, da], axis=-1))  # (N, T, D)
        return self._shift_backward(du)

    def _drop(self, name):
        """Running a pass overwrites the conditioner's cache: drop the other pass's cache."""
        getattr(self, "_caches", {}).pop(name, None)

    # -- the two directions ------------------------------------------------------------

    def forward(self, x):
        self._check(x, "x")
        xp = get_array_module(x)
        self._drop("inverse")
        mu, alpha, tanh_a = self._conditioner(x)  # (N, T, D) each
        exp_neg_alpha = xp.exp(-alpha)
        z = (x - mu) * exp_neg_alpha  # (N, T, D)
        self._save_cache("forward", (z, exp_neg_alpha, tanh_a))
        return z, -alpha.sum(axis=(1, 2))

    def inverse(self, z):
        self._check(z, "z")
        xp = get_array_module(z)
        self._drop("forward")
        n, d = z.shape[0], self.features
        x = xp.empty_like(z)  # (N, T, D), filled token by token
        logdet = xp.zeros(n, dtype=z.dtype)
        self.net.reset_kv_cache()
        u_t = xp.broadcast_to(self._own_params["start"], (n, d))  # (N, D): the first token sees the start
        for t in range(self.n_tokens):
            h_t = self.net.step(u_t)  # (N, 2D), from s, x_1..x_{t-1}
            alpha_t = self.alpha_bound * xp.tanh(h_t[:, d:] / self.alpha_bound)
            x[:, t] = z[:, t] * xp.exp(alpha_t) + h_t[:, :d]  # x_t = z_t exp(alpha_t) + mu_t
            logdet += alpha_t.sum(axis=1)
            u_t = x[:, t]
        self.net.reset_kv_cache()
        self._save_cache("inverse", x)
        return x, logdet

    def backward(self, dz, dlogdet):
        z, exp_neg_alpha, tanh_a = self._take_cache("forward", "backward")
        # z = (x - mu) * exp(-alpha): dz/dx_t (direct) = exp(-alpha), dz/dmu = -exp(-alpha), dz/dalpha = -z
        dx = dz * exp_neg_alpha  # (N, T, D)
        dmu = -dx
        # logdet = -sum alpha: every alpha also receives -dlogdet
        dalpha = -dz * z - dlogdet[:, None, None]
        # mu, alpha = net(shift(x)): the conditioner's path back to x (tokens before t)
        return dx + self._conditioner_backward(dmu, dalpha, tanh_a)

    def inverse_backward(self, dx, dlogdet):
        # The inverse solves F(x) = z for x, with F the forward map. Implicit differentiation:
        #   lam = dL/dz = J^{-T} g,   g = dx + (dlogdet-path of logdet = sum alpha(x)),   J = dF/dx,
        #   dL/dtheta through mu and alpha with dmu = lam * exp(-alpha), dalpha = lam * z + dlogdet.
        # J^T lam = g written out (J = diag(exp(-alpha)) minus the conditioner's terms) is the fixed point
        #   lam = exp(alpha) * (dx + VJP_x(dmu = lam exp(-alpha), dalpha = lam z + dlogdet)),
        # and the VJP at token t reads lam at tokens > t only (causality): starting from lam = 0,
        # sweep k makes tokens T-k+1..T exact, so T sweeps give lam exactly. Sweep T+1, at the exact
        # lam, is the one whose parameter gradients are kept.
        x = self._take_cache("inverse", "inverse_backward")
        xp = get_array_module(x)
        kept = {name: g.copy() for name, g in self.grads.items()}  # gradients from before this call
        lam = xp.zeros_like(x)  # (N, T, D)
        for sweep in range(self.n_tokens + 1):
            if sweep == self.n_tokens:
                for name, g in self.grads.items():
                    g[...] = kept[name]  # drop what the earlier sweeps accumulated
            mu, alpha, tanh_a = self._conditioner(x)  # (N, T, D) each
            exp_neg_alpha = xp.exp(-alpha)
            z = (x - mu) * exp_neg_alpha
            r = self._conditioner_backward(lam * exp_neg_alpha, lam * z + dlogdet[:, None, None], tanh_a)
            lam = (dx + r) / exp_neg_alpha  # (N, T, D)
        return lam
