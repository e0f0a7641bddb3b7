"""VelocityField: a time-dependent vector field v(x, t) on R^D, an MLP with a hand-written backward and exact divergence.

A continuous normalizing flow moves points along dx/dt = v(x, t) (Chen et al.
2018, arXiv:1806.07366); flow matching learns v by regression (Lipman et al.
2023, arXiv:2210.02747). The network reads x, Fourier features of x and
sinusoidal features of t, concatenated:

    g   = x B                                 (N, M), B (D, M) fixed, B ~ N(0, s^2)
    h_0 = [x, sin(g), cos(g), phi(t)]         (N, D + 2M + 2F)
    a_l = h_{l-1} W_l + b_l,  h_l = silu(a_l)     for the hidden layers l = 1..L
    v   = h_L W_out + b_out                   (N, D)

The Fourier features sin(x B), cos(x B) (Tancik et al. 2020,
arXiv:2006.10739) let a small MLP draw sharp structure (the edges of the
checkerboard, thin rings): without them a SiLU network is smooth on the
scale of its inputs and blurs edges, which costs likelihood. B is drawn
once and saved with the model (a buffer, not a parameter).

Why concatenation for t and not FiLM (t scaling and shifting every hidden
layer): phi(t) enters only as a shift of the first pre-activation, constant
in x, so the Jacobian dv/dx, and with it the divergence, is that of a plain
MLP in x; on the 2D toys it is enough (benchmarks/cfm_toys.py).

The divergence div v = sum_j dv_j/dx_j, exactly, by forward mode (one
Jacobian-vector product per input direction e_j; D of them). Push the
tangent d/dx_j through the same steps as the forward pass:

    dh_0 = [e_j, cos(g) * B[j], -sin(g) * B[j], 0]    d sin(g)/dx_j = cos(g) B[j, :]; phi(t) is constant in x
    da_l = dh_{l-1} W_l                               (the bias is constant: no term)
    dh_l = silu'(a_l) * da_l                          silu'(a) = s (1 + a (1 - s)), s = sigmoid(a)
    dv   = dh_L W_out                                 = column j of the Jacobian dv/dx, (N, D)

and sum the diagonal: div v = sum_j dv^(j)[:, j]. The tangents ride along
with the forward pass, a (D, N, K) stack next to the (N, K) activations:
about (1 + D) forward passes of work, no backward pass. silu is smooth
(unlike ReLU, whose derivative jumps), so v and its divergence change
smoothly with x, as the ODE solver and the likelihood integral need.
"""

from ..backend import DEFAULT_DTYPE, get_array_module, normal, sigmoid
from ..nn.activations import SiLU
from ..nn.mlp import MLP
from ..nn.module import Module
from .time_embedding import time_features

__all__ = ["VelocityField"]


class VelocityField(Module):
    """v(x, t): an MLP with SiLU activations over [x, sin(x B), cos(x B), phi(t)].

    Args:
        features: D, the dimension of x (2 for the toys).
        hidden: widths of the hidden layers.
        n_frequencies: F, the sinusoidal time features (``time_features``).
        n_fourier: M, the Fourier features of x (0: none).
        fourier_scale: s, the standard deviation of B's entries (frequencies
            in radians per unit of x).
        dtype, rng: as for ``nn.Linear``; B is drawn first, then every
            layer starts uniform (PyTorch's default), the last one too.
        The defaults, on 2D data: 34,442 parameters (MLP 42 -> 120 -> 120 -> 120 -> 2).

    Shapes:
        x: (N, D), t: float or (N,) -> v: (N, D); divergence: (N,).

    Caches:
        ``forward`` keeps g = x B (N, M) for the backward of the Fourier
        features, and the MLP what its backward needs (each Linear its
        input, each SiLU its pre-activation); ``backward`` releases them.
        ``divergence`` keeps nothing: it is for evaluation, not training.

    Reference:
        Lipman, Chen, Ben-Hamu, Nickel & Le (2023), "Flow Matching for
        Generative Modeling", arXiv:2210.02747.
    """

    def __init__(
        self,
        features=2,
        hidden=(120, 120, 120),
        n_frequencies=4,
        n_fourier=16,
        fourier_scale=4.0,
        dtype=DEFAULT_DTYPE,
        *,
        rng,
    ):
        super().__init__()
        for name, value, least in [
            ("features", features, 1),
            ("n_frequencies", n_frequencies, 0),
            ("n_fourier", n_fourier, 0),
        ]:
            if int(value) != value or value < least:
                raise ValueError(f"VelocityField {name} must be an integer >= {least}; got {value!r}.")
        self.features, self.hidden = int(features), tuple(int(k) for k in hidden)
        self.n_frequencies, self.n_fourier, self.fourier_scale = (
            int(n_frequencies),
            int(n_fourier),
            float(fourier_scale),
        )
        self.B = normal((self.features, self.n_fourier), dtype, rng, scale=self.fourier_scale)  # (D, M), fixed
        sizes = (self.features + 2 * self.n_fourier + 2 * self.n_frequencies, *self.hidden, self.features)
        self.net = self.add_child("net", MLP(sizes, activation="silu", last_init="uniform", dtype=dtype, rng=rng))

    # B is state, not a parameter: saved with the model, moved with it, never trained.

    def _own_buffers(self):
        return {"B": self.B}

    def _set_own_buffer(self, name, value):
        if name != "B":
            super()._set_own_buffer(name, value)  # raises: no such buffer
        self.B = value

    def _inputs(self, x, t):
        """(h_0, g): [x, sin(g), cos(g), phi(t)] (N, D + 2M + 2F) and g = x B (N, M), after checking x and t."""
        if not hasattr(x, "ndim") or x.ndim != 2 or x.shape[1] != self.features:
            raise ValueError(
                f"VelocityField expects x of shape (N, {self.features}); got {getattr(x, 'shape', type(x).__name__)}."
            )
        t_shape = getattr(t, "shape", ())
        if t_shape not in ((), (x.shape[0],)):
            raise ValueError(
                f"t must be a float or an array of shape ({x.shape[0]},), one time per row; got {t_shape}."
            )
        xp = get_array_module(x)
        g = x @ self.B  # (N, M)
        return xp.concatenate([x, xp.sin(g), xp.cos(g), time_features(t, self.n_frequencies, x)], axis=1), g

    def forward(self, x, t):
        """v(x, t), shape (N, D); caches for ``backward``."""
        h, g = self._inputs(x, t)
        self._save_cache("forward", g)
        return self.net.forward(h)

    def backward(self, dv):
        """dL/dx (N, D) from dL/dv (N, D); adds to every parameter's gradient (t is not differentiated)."""
        g = self._take_cache("forward", "backward")  # (N, M)
        xp = get_array_module(dv)
        d, m = self.features, self.n_fourier
        dh = self.net.backward(dv)  # (N, D + 2M + 2F); the phi(t) columns are dropped: t is no parameter
        # h_0 = [x, sin(g), cos(g), ...], g = x B:  dg = dsin * cos(g) - dcos * sin(g),  dx = dx_direct + dg B^T
        dg = dh[:, d : d + m] * xp.cos(g) - dh[:, d + m : d + 2 * m] * xp.sin(g)  # (N, M)
        return dh[:, :d] + dg @ self.B.T  # (N, D)

    def divergence(self, x, t):
        """(v, div v): v (N, D) and the exact trace of dv/dx (N,), by forward mode (module docstring).

        No caches are touched, so it can run between a ``forward`` and its ``backward``.
        """
        xp = get_array_module(x)
        h, g = self._inputs(x, t)  # (N, D + 2M + 2F), (N, M)
        n, d = x.shape
        m = self.n_fourier
        tangent = xp.zeros((d, n, h.shape[1]), dtype=x.dtype)  # (D, N, D + 2M + 2F): tangent[j] = dh_0/dx_j
        cos_g, sin_g = xp.cos(g), xp.sin(g)
        for j in range(d):
            tangent[j, :, j] = 1  # dx/dx_j = e_j
            tangent[j, :, d : d + m] = cos_g * self.B[j]  # d sin(g)/dx_j
            tangent[j, :, d + m : d + 2 * m] = -sin_g * self.B[j]  # d cos(g)/dx_j
        linears = [layer for layer in self.net.layers if not isinstance(layer, SiLU)]
        for i, linear in enumerate(linears):
            W, b = linear.params["W"], linear.params["b"]
            a = h @ W + b  # (N, K)
            tangent = tangent @ W  # (D, N, K): da_l = dh_{l-1} W_l
            if i < len(linears) - 1:
                tangent = tangent * SiLU.derivative(a)  # dh_l = silu'(a_l) * da_l
                h = a * sigmoid(a)  # h_l = silu(a_l)
            else:
                h = a  # v, (N, D)
        div = sum(tangent[j, :, j] for j in range(d))  # (N,): trace of the Jacobian
        return h, div
