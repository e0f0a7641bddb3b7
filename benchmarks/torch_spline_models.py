"""The autoregressive and spline 2D models of ``minflow.zoo.spline_2d`` written in PyTorch, for side-by-side timing.

PyTorch is an optional dependency of the benchmarks, never of minflow. Same
architectures, parameterisation and parameter order as minflow's, so
``torch_models.load_minflow_params`` copies a minflow model's weights in and
the log-densities agree (tests/test_benchmarks.py):

- ``TorchMAF2D``: MAF layers (MADE 2 -> hidden -> P * 2, masks from the
  same degrees) with the affine transformer, s = tanh(s_raw) (maf_2d) or
  s = s_raw / (1 + |s_raw| / log 1000) (``maf_2d(scale="softclip")``), or
  the rational-quadratic spline (nsf_ar_2d);
- ``TorchNSF2D``: spline couplings, layer k copies x[k % 2] (nsf_2d).

The spline follows ``minflow.flows.transformers.spline``: K bins on
[-B, B], widths and heights by softmax with a floor of 1e-3, inner slopes
1e-3 + softplus(u + c) with softplus(c) = 1 - 1e-3, unit slopes at +-B,
identity outside.
"""

import math

import numpy
import torch
from torch import nn
from torch.nn import functional
from torch_models import LOG_2PI, _uniform_init, _zero_init

__all__ = ["TorchMAF2D", "TorchNSF2D", "rq_spline"]

MIN_BIN, MIN_DERIVATIVE = 1e-3, 1e-3
SOFTCLIP_BOUND = math.log(1e3)
SHIFT = math.log(math.expm1(1 - MIN_DERIVATIVE))


def _knots(u, bound):
    """(N, K+1, D) knots from logits (N, K, D)."""
    k = u.shape[1]
    frac = MIN_BIN + (1 - k * MIN_BIN) * torch.softmax(u, dim=1)
    inner = -bound + 2 * bound * torch.cumsum(frac, dim=1)[:, :-1]
    ends = torch.full_like(u[:, :1], bound)
    return torch.cat([-ends, inner, ends], dim=1)


def rq_spline(x, params, n_bins, bound):
    """y and log dy/dx (N, D) for x (N, D), params (N, 3K - 1, D)."""
    k = n_bins
    xk, yk = _knots(params[:, :k], bound), _knots(params[:, k : 2 * k], bound)
    ones = torch.ones_like(params[:, :1])
    d = torch.cat([ones, MIN_DERIVATIVE + functional.softplus(params[:, 2 * k :] + SHIFT), ones], dim=1)
    inside = (x >= -bound) & (x <= bound)
    xc = x.clamp(-bound, bound)
    idx = (xc[:, None] >= xk[:, 1:k]).sum(dim=1, keepdim=True)  # (N, 1, D)

    def at(t, i):
        return t.gather(1, i)[:, 0]

    x_lo, x_hi, y_lo, y_hi = at(xk, idx), at(xk, idx + 1), at(yk, idx), at(yk, idx + 1)
    d0, d1 = at(d, idx), at(d, idx + 1)
    w, h = x_hi - x_lo, y_hi - y_lo
    s = h / w
    xi = (xc - x_lo) / w
    th = xi * (1 - xi)
    den = s + (d1 + d0 - 2 * s) * th
    y = y_lo + h * (s * xi * xi + d0 * th) / den
    logdet = 2 * torch.log(s) + torch.log(d1 * xi * xi + 2 * s * th + d0 * (1 - xi) ** 2) - 2 * torch.log(den)
    return torch.where(inside, y, x), torch.where(inside, logdet, torch.zeros_like(logdet))


def _affine(x, params, scale):
    s_raw = params[:, 0]
    s = torch.tanh(s_raw) if scale == "tanh" else s_raw / (1 + s_raw.abs() / SOFTCLIP_BOUND)
    return x * torch.exp(s) + params[:, 1], s


class _MaskedLinear(nn.Linear):
    def __init__(self, mask):
        super().__init__(mask.shape[0], mask.shape[1])
        self.register_buffer("mask", torch.from_numpy(mask.T.astype(numpy.float32)))  # (out, in)
        _uniform_init(self)
        with torch.no_grad():
            self.weight *= self.mask

    def forward(self, x):
        return functional.linear(x, self.weight * self.mask, self.bias)


class _MADE(nn.Module):
    """MADE 2 -> hidden -> P * 2, the same degrees as ``minflow.nn.MADE`` (natural or reversed order)."""

    def __init__(self, n_params, hidden, reverse, last_init="zeros"):
        super().__init__()
        dim = 2
        degrees = numpy.arange(dim, 0, -1) if reverse else numpy.arange(1, dim + 1)
        units = [degrees] + [numpy.arange(w) % max(dim - 1, 1) + 1 for w in hidden]
        out = numpy.tile(degrees, n_params)
        layers = []
        for i, (m_in, m_out) in enumerate(zip(units, units[1:] + [out])):
            last = i == len(units) - 1
            mask = m_out[None, :] > m_in[:, None] if last else m_out[None, :] >= m_in[:, None]
            layers.append(_MaskedLinear(mask))
            if not last:
                layers.append(nn.ReLU())
            elif last_init == "zeros":
                _zero_init(layers[-1])
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class TorchMAF2D(nn.Module):
    """MAF on 2D data: ``transformer`` "affine" (maf_2d: 20 layers, (40, 40); ``scale`` "tanh" or
    "softclip") or "spline" (nsf_ar_2d: 5 layers, K = 8, B = 5); ``last_init`` of the MADEs' last
    layers, "zeros" or "uniform"."""

    def __init__(
        self, n_layers=8, transformer="affine", hidden=(64, 64), n_bins=8, bound=5.0, scale="tanh", last_init="zeros"
    ):
        super().__init__()
        self.transformer, self.n_bins, self.bound, self.scale = transformer, n_bins, bound, scale
        self.n_params = 2 if transformer == "affine" else 3 * n_bins - 1
        self.layers = nn.ModuleList(
            _MADE(self.n_params, hidden, reverse=k % 2 == 1, last_init=last_init) for k in range(n_layers)
        )

    def log_prob(self, x):
        logdet = 0.0
        for made in self.layers:
            params = made(x).reshape(x.shape[0], self.n_params, 2)
            if self.transformer == "affine":
                x, ld = _affine(x, params, self.scale)
            else:
                x, ld = rq_spline(x, params, self.n_bins, self.bound)
            logdet = logdet + ld.sum(dim=1)
        return -0.5 * (x * x).sum(dim=1) - LOG_2PI + logdet


class TorchNSF2D(nn.Module):
    """Spline couplings on 2D data (nsf_2d: 6 layers, MLP 1 -> 64 -> 64 -> 23, K = 8 on [-5, 5])."""

    def __init__(self, n_layers=6, hidden=64, n_bins=8, bound=5.0):
        super().__init__()
        self.n_bins, self.bound = n_bins, bound
        self.n_params = 3 * n_bins - 1
        self.nets = nn.ModuleList()
        for _ in range(n_layers):
            net = nn.Sequential(
                nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, self.n_params)
            )
            for layer in net:
                if isinstance(layer, nn.Linear):
                    _uniform_init(layer)
            _zero_init(net[-1])
            self.nets.append(net)

    def log_prob(self, x):
        logdet = 0.0
        for k, net in enumerate(self.nets):
            c = k % 2  # the copied coordinate
            a, b = x[:, c : c + 1], x[:, 1 - c : 2 - c]
            params = net(a).reshape(x.shape[0], self.n_params, 1)
            b, ld = rq_spline(b, params, self.n_bins, self.bound)
            x = torch.cat([a, b], dim=1) if c == 0 else torch.cat([b, a], dim=1)
            logdet = logdet + ld.sum(dim=1)
        return -0.5 * (x * x).sum(dim=1) - LOG_2PI + logdet
