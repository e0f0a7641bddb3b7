"""VelocityField: a time-dependent vector field v(x, t) on R^D, an MLP with a hand-written backward and exact divergence.

A continuous normalizing flow moves points along dx/dt = v(x, t) (Chen et al.
2018, arXiv:1806.07366); flow matching learns v by regression (Lipman et al.
2023, arXiv:2210.02747). The network reads x and sinusoidal features of t,
concatenated:

    h_0 = [x, phi(t)]                       (N, D + 2F)
    a_l = h_{l-1} W_l + b_l,  h_l = silu(a_l)   for the hidden layers l = 1..L
    v   = h_L W_out + b_out                 (N, D)

Why concatenation and not FiLM (t scaling and shifting every hidden layer):
phi(t) enters only as a shift of the first pre-activation, constant in x, so
the Jacobian dv/dx, and with it the divergence, is that of a plain MLP in x.
On 2D toys it fits as well (the benchmarks reach the acceptance gaps with it).

The divergence div v = sum_j dv_j/dx_j, exactly, by forward mode (one
Jacobian-vector product per input direction e_j; D = 2 of them). Push the
tangent d/dx_j through the same steps as the forward pass:

    da_1 = e_j W_1                 row j of W_1's x-part, the same for every sample
    dh_l = silu'(a_l) * da_l       silu'(a) = s (1 + a (1 - s)), s = sigmoid(a)
    da_l = dh_{l-1} W_l            (the bias and phi(t) are constant in x: no term)
    dv   = dh_L W_out              = column j of the Jacobian dv/dx, (N, D)

and sum the diagonal: div v = sum_j dv^(j)[:, j]. The tangents ride along
with the forward pass, a (D, N, K) stack next to the (N, K) activations:
about (1 + D) forward passes of work, no backward pass. silu is smooth
(unlike ReLU, whose derivative jumps), so v and its divergence change
smoothly with x, as the ODE solver and the likelihood integral need.
"""

from ..backend import DEFAULT_DTYPE, get_array_module, make_rng, sigmoid
from ..nn.activations import SiLU
from ..nn.mlp import MLP
from ..nn.module import Module
from .time_embedding import time_features

__all__ = ["VelocityField"]


class VelocityField(Module):
    """v(x, t): an MLP with SiLU activations over [x, phi(t)].

    Args:
        dim: D, the dimension of x (2 for the toys).
        hidden: widths of the hidden layers; (128, 128, 128) with
            n_frequencies=4 has 34,690 parameters on 2D data.
        n_frequencies: F, the sinusoidal time features (``time_features``).
        dtype, rng: as for ``nn.Linear``; every layer starts uniform
            (PyTorch's default), the last one too.

    Shapes:
        x: (N, D), t: float or (N,) -> v: (N, D); divergence: (N,).

    Caches:
        ``forward`` keeps what the MLP's backward needs (each Linear its
        input, each SiLU its pre-activation); ``backward`` releases them.
        ``divergence`` keeps nothing: it is for evaluation, not training.

    Reference:
        Lipman, Chen, Ben-Hamu, Nickel & Le (2023), "Flow Matching for
        Generative Modeling", arXiv:2210.02747.
    """

    def __init__(self, dim=2, hidden=(128, 128, 128), n_frequencies=4, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        if int(dim) != dim or dim < 1:
            raise ValueError(f"VelocityField dim must be a positive integer; got {dim!r}.")
        if int(n_frequencies) != n_frequencies or n_frequencies < 0:
            raise ValueError(f"VelocityField n_frequencies must be a non-negative integer; got {n_frequencies!r}.")
        rng = rng if rng is not None else make_rng(0)
        self.dim, self.n_frequencies, self.hidden = int(dim), int(n_frequencies), tuple(int(k) for k in hidden)
        sizes = (self.dim + 2 * self.n_frequencies, *self.hidden, self.dim)
        self.net = self.add_child("net", MLP(sizes, activation="silu", last_init="uniform", dtype=dtype, rng=rng))

    def describe(self):
        """The constructor's settings, stored in checkpoints."""
        return {"dim": self.dim, "hidden": list(self.hidden), "n_frequencies": self.n_frequencies}

    def _inputs(self, x, t):
        """[x, phi(t)]: (N, D + 2F), after checking x and t."""
        if not hasattr(x, "ndim") or x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"VelocityField expects x of shape (N, {self.dim}); got {getattr(x, 'shape', type(x).__name__)}."
            )
        xp = get_array_module(x)
        t_shape = getattr(t, "shape", ())
        if t_shape not in ((), (x.shape[0],)):
            raise ValueError(f"t must be a float or an array of shape ({x.shape[0]},), one time per row; got {t_shape}.")
        return xp.concatenate([x, time_features(t, self.n_frequencies, x)], axis=1)  # (N, D + 2F)

    def forward(self, x, t):
        """v(x, t), shape (N, D); caches for ``backward``."""
        return self.net.forward(self._inputs(x, t))

    def backward(self, dv):
        """dL/dx (N, D) from dL/dv (N, D); adds to every parameter's gradient (t is not differentiated)."""
        d_inputs = self.net.backward(dv)  # (N, D + 2F)
        return d_inputs[:, : self.dim]  # the phi(t) columns are no parameters: their gradient is dropped

    def divergence(self, x, t):
        """(v, div v): v (N, D) and the exact trace of dv/dx (N,), by forward mode (module docstring).

        No caches are touched, so it can run between a ``forward`` and its ``backward``.
        """
        xp = get_array_module(x)
        h = self._inputs(x, t)  # (N, D + 2F)
        linears = [layer for layer in self.net.layers if not isinstance(layer, SiLU)]
        n, d = x.shape
        tangent = None  # (D, N, K): tangent[j] = d h / d x_j
        for i, linear in enumerate(linears):
            W, b = linear.params["W"], linear.params["b"]
            a = h @ W + b  # (N, K)
            if tangent is None:  # da_1 = e_j W_1: row j of W_1, the same for every sample
                tangent = xp.broadcast_to(W[:d, None, :], (d, n, W.shape[1]))  # (D, N, K)
            else:
                tangent = tangent @ W  # (D, N, K): da_l = dh_{l-1} W_l
            if i < len(linears) - 1:
                s = sigmoid(a)
                tangent = tangent * (s * (1 + a * (1 - s)))  # dh_l = silu'(a_l) * da_l
                h = a * s  # h_l = silu(a_l)
            else:
                h = a  # v, (N, D)
        div = sum(tangent[j, :, j] for j in range(d))  # (N,): trace of the Jacobian
        return h, div
