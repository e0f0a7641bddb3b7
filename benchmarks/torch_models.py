"""The reference models written in PyTorch, for side-by-side timing only.

PyTorch is an optional dependency of the benchmarks, never of minflow. Each
model here follows reference-problems.md section 3 with the same
architecture, initialisation scheme, batch and optimizer as minflow's.
"""

import math

import torch
from torch import nn

__all__ = ["TorchR2"]


class _Coupling2D(nn.Module):
    """Affine coupling on 2D data: copy x[k], transform x[1-k] (R2 layer)."""

    def __init__(self, copy_index, hidden=64):
        super().__init__()
        self.copy_index = copy_index
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        for layer in self.net:
            if isinstance(layer, nn.Linear):  # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as minflow's "uniform"
                bound = 1 / math.sqrt(layer.in_features)
                nn.init.uniform_(layer.weight, -bound, bound)
                nn.init.uniform_(layer.bias, -bound, bound)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x):
        a = x[:, self.copy_index : self.copy_index + 1]
        b = x[:, 1 - self.copy_index : 2 - self.copy_index]
        s_raw, t = self.net(a).chunk(2, dim=1)
        s = torch.tanh(s_raw)
        b = b * torch.exp(s) + t
        z = torch.cat([a, b], dim=1) if self.copy_index == 0 else torch.cat([b, a], dim=1)
        return z, s.sum(dim=1)

    def inverse(self, z):
        a = z[:, self.copy_index : self.copy_index + 1]
        b = z[:, 1 - self.copy_index : 2 - self.copy_index]
        s_raw, t = self.net(a).chunk(2, dim=1)
        b = (b - t) * torch.exp(-torch.tanh(s_raw))
        return torch.cat([a, b], dim=1) if self.copy_index == 0 else torch.cat([b, a], dim=1)


class TorchR2(nn.Module):
    """R2 in PyTorch: 8 affine couplings, layer k copies x[k % 2], base N(0, I2)."""

    def __init__(self, n_layers=8):
        super().__init__()
        self.layers = nn.ModuleList(_Coupling2D(k % 2) for k in range(n_layers))

    def log_prob(self, x):
        logdet = 0.0
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return -0.5 * (x * x).sum(dim=1) - math.log(2 * math.pi) + logdet

    @torch.no_grad()
    def sample(self, n):
        z = torch.randn(n, 2)
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z
