"""Autoregressive flows: a MADE conditioner and an elementwise transformer (MAF and IAF).

Direction: forward maps data x to latent z. In a masked autoregressive flow
(MAF; Papamakarios, Pavlakou & Murray 2017, arXiv:1705.07057) each z_d is
x_d transformed with parameters that depend on the x_j before d in an order:

    params = made(x)                   (N, P * D) viewed as (N, P, D); params[:, :, d] sees x_<d only
    forward:  z = tau(x; params)       one conditioner pass (the density direction)
    inverse:  x = tau^-1(z; made(x))   D passes: pass k fixes the variable of degree k,
                                       whose parameters depend only on variables already fixed
    log|det dz/dx| = sum_d log dz_d/dx_d    (triangular Jacobian)

Inverse autoregressive flow (IAF; Kingma et al. 2016, arXiv:1606.04934) is
the same layer the other way round: its sampling direction is MAF's one-pass
forward, its density direction MAF's D-pass inverse (``IAF`` below).

The gradient of the D-pass inverse comes from the fixed point it reaches,
z = F(x) with F(x) = tau(x; made(x)) (implicit function theorem): with
J = dF/dx (triangular), G = logdet_F and upstream gx = dL/dx, gl = dL/dlogdet
(logdet of the inverse = -G(x)),

    gbar = gx - gl dG/dx,    solve J^T u = gbar    (back substitution, in reverse order)
    dL/dz = u,               dL/dtheta = -(u^T dF/dtheta) - gl dG/dtheta

Each product with J^T is one backward pass of the forward map, so the
backward of the inverse costs D + 2 forward-and-backward passes, as the
inverse itself costs D passes.
"""

from ..backend import DEFAULT_DTYPE, get_array_module
from ..nn.made import MADE
from .base import Bijection, Inverse
from .transformers.base import Transformer

__all__ = ["IAF", "MaskedAutoregressive"]


class MaskedAutoregressive(Bijection):
    """MAF layer: z = tau(x; made(x)), with any transformer (affine, spline, ...).

    Args:
        features: D.
        transformer: a ``flows.transformers`` object (its n_params outputs per variable).
        hidden: the MADE's hidden widths.
        order: the MADE's order ("natural", "reversed", "random" or degrees).
        dtype, rng: parameter dtype and random generator.
        last_init: init of the MADE's last layer (a ``Linear`` init): "zeros"
            (default) starts an affine or spline layer as the identity;
            "uniform" starts it as a random map near the identity.

    Shapes:
        x, z: (N, D); logdet: (N,).

    Caches:
        forward: a marker (the MADE and the transformer keep their own
        caches of the pass). inverse: the x it found, for the implicit
        backward; the MADE's caches of a pass are overwritten by the next
        pass, so running one direction drops the other direction's cache
        (its backward is then a clear error).

    Reference:
        Papamakarios et al. (2017), "Masked Autoregressive Flow for Density
        Estimation", section 3; Germain et al. (2015), "MADE".
    """

    stateless = True  # MADE is a plain network: its caches are the only state

    def __init__(
        self, features, transformer, hidden=(64, 64), order="natural", dtype=DEFAULT_DTYPE, *, rng, last_init="zeros"
    ):
        super().__init__()
        if not isinstance(transformer, Transformer):
            raise TypeError(f"MaskedAutoregressive expects a Transformer; got {type(transformer).__name__}.")
        self.features = int(features)
        made = MADE(features, hidden, transformer.n_params, order, last_init=last_init, dtype=dtype, rng=rng)
        self.made = self.add_child("made", made)
        self.transformer = self.add_child("transformer", transformer)
        self.sequence = [int(d) for d in self.made.degrees.argsort()]  # variables in the order, first to last

    def _check_input(self, x, name):
        if x.ndim != 2 or x.shape[1] != self.features:
            raise ValueError(
                f"{type(self).__name__} expects {name} of shape (N, {self.features}); got {tuple(x.shape)}. "
                "Flatten images first, or use a coupling layer."
            )

    def _start_pass(self, other):
        for module in (self, self.transformer):
            if hasattr(module, "_caches"):
                module._caches.pop(other, None)

    def _params(self, x):
        h = self.made.forward(x)  # (N, P * D)
        return h.reshape(h.shape[0], self.transformer.n_params, self.features)  # (N, P, D)

    def _forward_entries(self, x):
        """z and the per-variable log dz_d/dx_d (N, D): one MADE pass, one transformer pass."""
        return self.transformer.forward(x, self._params(x))

    def _backward_entries(self, dz, dlogdet_entries):
        """dL/dx through the last ``_forward_entries``; adds the parameters' gradients."""
        dx, dparams = self.transformer.backward(dz, dlogdet_entries)
        return dx + self.made.backward(dparams.reshape(dparams.shape[0], -1))  # x feeds both

    def forward(self, x):
        self._check_input(x, "x")
        self._start_pass("inverse")
        z, logdet = self._forward_entries(x)
        self._save_cache("forward", True)
        return z, logdet.sum(axis=1)

    def backward(self, dz, dlogdet):
        self._take_cache("forward", "backward")
        return self._backward_entries(dz, dlogdet[:, None])

    def inverse(self, z):
        self._check_input(z, "z")
        self._start_pass("forward")
        xp = get_array_module(z)
        x = xp.zeros_like(z)
        for d in self.sequence:  # pass k fixes the k-th variable of the order
            x_all, logdet = self.transformer.inverse(z, self._params(x))
            x[:, d] = x_all[:, d]
        # The last pass saw every variable but the last one fixed, and no parameter depends on the
        # last one: x_all is the exact inverse and logdet its log-det.
        self.transformer.release_caches()
        self.made.release_caches()
        self._save_cache("inverse", x_all)
        return x_all, logdet.sum(axis=1)

    def inverse_backward(self, dx, dlogdet):
        x = self._take_cache("inverse", "inverse_backward")  # (N, D)
        xp = get_array_module(dx)
        n = dx.shape[0]
        grads = self.grads
        kept = {k: g.copy() for k, g in grads.items()}  # the helper passes below must not add to them

        def vjp(a, b):
            """a^T dF/dx + b dG/dx at x (one forward and one backward pass)."""
            self._forward_entries(x)
            return self._backward_entries(a, b)

        zeros = xp.zeros_like(dx)
        # logdet of the inverse is -G(x), and x moves G: the upstream on x is gx - gl dG/dx
        gbar = dx - dlogdet[:, None] * vjp(zeros, xp.ones((n, 1), dtype=dx.dtype))
        _, logdet_entries = self._forward_entries(x)
        self.transformer.release_caches()
        self.made.release_caches()
        jac_diag = xp.exp(logdet_entries)  # dz_d/dx_d, (N, D)
        # back substitution J^T u = gbar, last variable of the order first:
        # (J^T u)_d = J_dd u_d + sum over later variables i of u_i J_id
        u = xp.zeros_like(dx)
        for d in reversed(self.sequence):
            rest = vjp(u, zeros)[:, d]  # u_d is still 0 here
            u[:, d] = (gbar[:, d] - rest) / jac_diag[:, d]
        for k, g in grads.items():
            g[...] = kept[k]
        # dL/dtheta = -(u^T dF/dtheta) - gl dG/dtheta: one more backward pass with these upstreams
        vjp(-u, -dlogdet[:, None])
        return u


class IAF(Inverse):
    """Inverse autoregressive flow: MAF's layer turned round (Kingma et al. 2016, arXiv:1606.04934).

    Sampling (``inverse``, z -> x) is one pass, x = tau(z; made(z)); the
    density (``forward``, x -> z) takes D passes. It trains fast by reverse
    KL (through ``inverse_backward``, a single backward pass), which is what
    variational inference and fitting an energy need.

    Args:
        features, transformer, hidden, order, dtype, rng: as for ``MaskedAutoregressive``.

    Shapes:
        x, z: (N, D); logdet: (N,).

    Reference:
        Kingma et al. (2016), "Improved Variational Inference with Inverse
        Autoregressive Flow", section 4.
    """

    def __init__(self, features, transformer, hidden=(64, 64), order="natural", dtype=DEFAULT_DTYPE, *, rng):
        super().__init__(MaskedAutoregressive(features, transformer, hidden, order, dtype, rng=rng))
