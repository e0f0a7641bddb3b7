"""Flow matching in PyTorch: the twin of minflow.continuous, for equivalence checks and side-by-side timing.

``TorchVelocityField`` is ``minflow.continuous.VelocityField`` written with
torch.nn (the same Fourier features of x, sinusoidal time features, Linear
layers and SiLU, the same parameter order; B a buffer); ``torch_log_prob`` solves the same augmented ODE
with the same fixed-step RK4, from t = 1 (data) to t = 0 (noise), with the
exact divergence taken by autograd (one vector-Jacobian product per
coordinate, D = 2) instead of minflow's hand-written forward mode.
``torch_flow_matching_loss`` is the conditional flow matching loss with
the noise and times given, so both frameworks can be fed the same draws.
"""

import math

import torch
from torch import nn

__all__ = ["TorchVelocityField", "load_minflow_velocity", "torch_flow_matching_loss", "torch_log_prob"]

LOG_2PI = math.log(2 * math.pi)


class TorchVelocityField(nn.Module):
    """v(x, t) = MLP([x, sin(x B), cos(x B), phi(t)]), SiLU between Linear layers; see minflow/continuous/velocity_field.py."""

    def __init__(self, features=2, hidden=(120, 120, 120), n_frequencies=4, n_fourier=16):
        super().__init__()
        self.register_buffer("B", torch.zeros(features, n_fourier))  # copied from minflow's model
        sizes = (features + 2 * n_fourier + 2 * n_frequencies, *hidden, features)
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.SiLU())
        self.net = nn.Sequential(*layers)
        self.n_frequencies = n_frequencies

    def forward(self, x, t):
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1).expand(x.shape[0], 1)  # (N, 1)
        freqs = torch.tensor([math.pi * 2.0**k for k in range(self.n_frequencies)], dtype=x.dtype)
        angles = t * freqs  # (N, F)
        phi = torch.stack([torch.sin(angles), torch.cos(angles)], dim=2).reshape(x.shape[0], -1)  # (N, 2F)
        g = x @ self.B  # (N, M)
        return self.net(torch.cat([x, torch.sin(g), torch.cos(g), phi], dim=1))


def divergence(field, x, t):
    """(v, div v) with div v = sum_j dv_j/dx_j by autograd, one backward pass per coordinate."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v = field(x, t)
        div = sum(
            torch.autograd.grad(v[:, j].sum(), x, retain_graph=j < x.shape[1] - 1)[0][:, j] for j in range(x.shape[1])
        )
    return v.detach(), div.detach()


@torch.no_grad()
def torch_log_prob(field, x, n_steps=64):
    """log q(x): RK4 on (x, logdet) from t = 1 to 0, d logdet/dt = div v; then log N(z) + logdet."""
    h = -1.0 / n_steps

    def f(t, state):
        return divergence(field, state[0], t)

    y = (x, torch.zeros(x.shape[0], dtype=x.dtype))
    for i in range(n_steps):
        t = 1.0 + i * h
        k1 = f(t, y)
        k2 = f(t + h / 2, tuple(a + h / 2 * b for a, b in zip(y, k1)))
        k3 = f(t + h / 2, tuple(a + h / 2 * b for a, b in zip(y, k2)))
        k4 = f(t + h, tuple(a + h * b for a, b in zip(y, k3)))
        y = tuple(a + h / 6 * (b1 + 2 * b2 + 2 * b3 + b4) for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4))
    z, logdet = y
    return -0.5 * (z * z).sum(dim=1) - 0.5 * z.shape[1] * LOG_2PI + logdet


def torch_flow_matching_loss(field, x1, x0, t):
    """mean_n |v((1 - t) x0 + t x1, t) - (x1 - x0)|^2 with the noise x0 (N, D) and times t (N,) given."""
    x_t = (1 - t)[:, None] * x0 + t[:, None] * x1
    r = field(x_t, t) - (x1 - x0)
    return (r * r).sum(dim=1).mean()


@torch.no_grad()
def load_minflow_velocity(torch_field, minflow_field):
    """Copy a minflow VelocityField's parameters into the twin (Linear W is (in, out) in minflow: transposed)."""
    ours = list(minflow_field.params.values())
    theirs = list(torch_field.parameters())
    if len(ours) != len(theirs):
        raise ValueError(
            f"{len(ours)} minflow parameters against {len(theirs)} PyTorch ones: not the same architecture."
        )
    for a, p in zip(ours, theirs):
        value = torch.from_numpy(a.T.copy() if a.ndim == 2 else a.copy())
        if tuple(value.shape) != tuple(p.shape):
            raise ValueError(f"shape {tuple(value.shape)} against {tuple(p.shape)}: not the same architecture.")
        p.copy_(value)
    torch_field.B.copy_(torch.from_numpy(minflow_field.B.copy()))
    return torch_field
