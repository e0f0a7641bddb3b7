"""The reference models written in PyTorch, for side-by-side timing only.

PyTorch is an optional dependency of the benchmarks, never of minflow. Each
model here follows docs/reference-problems.md section 3 with the same
architecture, initialisation scheme, batch and optimizer as minflow's:

- ``TorchR2``: 8 affine couplings on 2D data (gaussians8 etc.);
- ``TorchP2`` and ``torch_energy``: K planar layers trained by reverse KL
  on the energy targets U1..U4 (with the soft wall);
- ``TorchD8``: the multi-scale RealNVP on 8x8 digits (logit preprocessing,
  checkerboard and channel couplings with ResNet conditioners, squeeze,
  factor-out);
- ``TorchTarFlow``: TarFlow on 8x8 digits (logit preprocessing, patches,
  TarFlow blocks with causal-Transformer conditioners, reversals), written
  the PyTorch way (``scaled_dot_product_attention``, ``GELU("tanh")``).
"""

import math

import numpy
import torch
from torch import nn

__all__ = ["TorchD8", "TorchP2", "TorchR2", "TorchTarFlow", "load_minflow_params", "torch_energy"]

LOG_2PI = math.log(2 * math.pi)


def _uniform_init(layer):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on weight and bias, as minflow's "uniform" init."""
    bound = 1 / math.sqrt(layer.weight[0].numel())
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.uniform_(layer.bias, -bound, bound)


def _zero_init(layer):
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)


# -- R2 -------------------------------------------------------------------------


class _Coupling2D(nn.Module):
    """Affine coupling on 2D data: copy x[k], transform x[1-k] (R2 layer)."""

    def __init__(self, copy_index, hidden=64):
        super().__init__()
        self.copy_index = copy_index
        self.net = nn.Sequential(
            nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2)
        )
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                _uniform_init(layer)
        _zero_init(self.net[-1])

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
        return -0.5 * (x * x).sum(dim=1) - LOG_2PI + logdet

    @torch.no_grad()
    def sample(self, n):
        z = torch.randn(n, 2)
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z


# -- P2 -------------------------------------------------------------------------


def torch_energy(name):
    """U_k(z) + wall(z) of docs/reference-problems.md section 2, as a differentiable function of z (N, 2)."""

    def w1(z1):
        return torch.sin(0.5 * math.pi * z1)

    def two_bumps(z1, z2, shift, width_a, width_b):
        a = -0.5 * ((z2 - w1(z1)) / width_a) ** 2
        b = -0.5 * ((z2 - w1(z1) + shift) / width_b) ** 2
        return -torch.logaddexp(a, b)

    def u(z):
        z1, z2 = z[:, 0], z[:, 1]
        if name == "U1":
            r = torch.sqrt(z1 * z1 + z2 * z2)
            rest = torch.logaddexp(-0.5 * ((z1 - 2) / 0.6) ** 2, -0.5 * ((z1 + 2) / 0.6) ** 2)
            value = 0.5 * ((r - 2) / 0.4) ** 2 - rest
        elif name == "U2":
            value = 0.5 * ((z2 - w1(z1)) / 0.4) ** 2
        elif name == "U3":
            value = two_bumps(z1, z2, 3 * torch.exp(-0.5 * ((z1 - 1) / 0.6) ** 2), 0.35, 0.35)
        elif name == "U4":
            value = two_bumps(z1, z2, 3 * torch.sigmoid((z1 - 1) / 0.3), 0.4, 0.35)
        else:
            raise ValueError(f"Unknown energy target {name!r}; expected U1, U2, U3 or U4.")
        over = torch.clamp(z1.abs() - 3.5, min=0)
        return value + 50 * over * over

    return u


class TorchP2(nn.Module):
    """K planar layers x = z + u_hat tanh(w.z + b) in the sampling direction, base N(0, I_D).

    u ~ U(-sqrt 2, sqrt 2)^D, w ~ U(-1, 1)^D, b = 0 (P2's initialisation);
    u_hat = u + (m(w.u) - w.u) w / |w|^2, m(a) = -1 + softplus(a).
    """

    def __init__(self, n_layers=32, features=2):
        super().__init__()
        self.u = nn.Parameter(torch.empty(n_layers, features).uniform_(-math.sqrt(2), math.sqrt(2)))
        self.w = nn.Parameter(torch.empty(n_layers, features).uniform_(-1, 1))
        self.b = nn.Parameter(torch.zeros(n_layers))
        self.features = features

    def sample_and_log_prob(self, n):
        """(x, log q(x)) for n samples of the base pushed through the layers (last layer first)."""
        z = torch.randn(n, self.features)
        log_q = -0.5 * (z * z).sum(dim=1) - 0.5 * self.features * LOG_2PI
        for k in reversed(range(self.u.shape[0])):
            u, w, b = self.u[k], self.w[k], self.b[k]
            wu = w @ u
            u_hat = u + (nn.functional.softplus(wu) - 1 - wu) * w / (w @ w)
            t = torch.tanh(z @ w + b)  # (N,)
            log_q = log_q - torch.log(1 + (1 - t * t) * (w @ u_hat))
            z = z + t[:, None] * u_hat
        return z, log_q

    @torch.no_grad()
    def sample(self, n):
        return self.sample_and_log_prob(n)[0]


# -- D8 -------------------------------------------------------------------------


class _ResNet(nn.Module):
    """3x3 conv in -> hidden, residual blocks h + conv(relu(conv(h))), relu, zero-initialised 3x3 conv out."""

    def __init__(self, c_in, c_out, hidden=32, n_blocks=2):
        super().__init__()
        self.conv_in = nn.Conv2d(c_in, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1))
            for _ in range(n_blocks)
        )
        self.conv_out = nn.Conv2d(hidden, c_out, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                _uniform_init(m)
        _zero_init(self.conv_out)

    def forward(self, x):
        h = self.conv_in(x)
        for block in self.blocks:
            h = h + block(h)
        return self.conv_out(torch.relu(h))


class _Checkerboard(nn.Module):
    """Affine coupling with a checkerboard mask: the net sees x * mask (C -> 2C channels)."""

    def __init__(self, c, size, parity, **net):
        super().__init__()
        i, j = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        self.register_buffer("copied", (((i + j) % 2) == parity).float()[None, None])
        self.c, self.net = c, _ResNet(c, 2 * c, **net)

    def _s_t(self, x_a):
        h = self.net(x_a)
        free = 1 - self.copied
        return torch.tanh(h[:, : self.c]) * free, h[:, self.c :] * free

    def forward(self, x):
        s, t = self._s_t(x * self.copied)
        return x * torch.exp(s) + t, s.sum(dim=(1, 2, 3))

    def inverse(self, z):
        s, t = self._s_t(z * self.copied)
        return (z - t) * torch.exp(-s)


class _Channel(nn.Module):
    """Affine coupling with a channel mask: copies one half of the channels (C/2 -> C channels)."""

    def __init__(self, first, c=4, **net):
        super().__init__()
        self.first, self.half, self.net = first, c // 2, _ResNet(c // 2, c, **net)

    def _halves(self, x):
        a, b = x[:, : self.half], x[:, self.half :]
        return (a, b) if self.first else (b, a)

    def _join(self, a, b):
        return torch.cat([a, b], 1) if self.first else torch.cat([b, a], 1)

    def forward(self, x):
        a, b = self._halves(x)
        h = self.net(a)
        s = torch.tanh(h[:, : self.half])
        return self._join(a, b * torch.exp(s) + h[:, self.half :]), s.sum(dim=(1, 2, 3))

    def inverse(self, z):
        a, b = self._halves(z)
        h = self.net(a)
        return self._join(a, (b - h[:, self.half :]) * torch.exp(-torch.tanh(h[:, : self.half])))


class TorchD8(nn.Module):
    """D8 in PyTorch: logit, 3 checkerboard couplings, squeeze, 3 channel couplings, factor out 2 channels, 4 checkerboard."""

    def __init__(self, size=8, hidden=32, n_blocks=2, alpha=0.05):
        super().__init__()
        net = {"hidden": hidden, "n_blocks": n_blocks}
        self.alpha, self.size = alpha, size
        self.first = nn.ModuleList(_Checkerboard(1, size, q, **net) for q in (0, 1, 0))
        self.middle = nn.ModuleList(_Channel(f, **net) for f in (True, False, True))
        self.last = nn.ModuleList(_Checkerboard(2, size // 2, q, **net) for q in (0, 1, 0, 1))

    def log_prob(self, v):
        a = self.alpha
        p = a + (1 - 2 * a) * v
        x = torch.log(p) - torch.log1p(-p)
        logdet = (math.log(1 - 2 * a) - torch.log(p) - torch.log1p(-p)).sum(dim=(1, 2, 3))
        for layer in self.first:
            x, ld = layer(x)
            logdet = logdet + ld
        n, h = x.shape[0], self.size // 2
        x = x.reshape(n, 1, h, 2, h, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, 4, h, h)  # squeeze
        for layer in self.middle:
            x, ld = layer(x)
            logdet = logdet + ld
        kept, factored = x[:, :2], x[:, 2:]
        for layer in self.last:
            kept, ld = layer(kept)
            logdet = logdet + ld
        z = torch.cat([kept, factored], 1)
        return -0.5 * (z * z).sum(dim=(1, 2, 3)) - 0.5 * z[0].numel() * LOG_2PI + logdet

    @torch.no_grad()
    def sample(self, n):
        h = self.size // 2
        z = torch.randn(n, 4, h, h)
        kept = z[:, :2]
        for layer in reversed(self.last):
            kept = layer.inverse(kept)
        x = torch.cat([kept, z[:, 2:]], 1)
        for layer in reversed(self.middle):
            x = layer.inverse(x)
        x = x.reshape(n, 1, 2, 2, h, h).permute(0, 1, 4, 2, 5, 3).reshape(n, 1, 2 * h, 2 * h)  # unsqueeze
        for layer in reversed(self.first):
            x = layer.inverse(x)
        return (torch.sigmoid(x) - self.alpha) / (1 - 2 * self.alpha)


# -- TarFlow -----------------------------------------------------------------------


class _TransformerLayer(nn.Module):
    """Pre-norm block: h = x + attn(LN(x)), y = h + mlp(LN(h)); causal attention."""

    def __init__(self, features, n_heads, mlp_ratio):
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(features)
        self.qkv, self.out = nn.Linear(features, 3 * features), nn.Linear(features, features)
        self.norm2 = nn.LayerNorm(features)
        self.fc1, self.fc2 = nn.Linear(features, mlp_ratio * features), nn.Linear(mlp_ratio * features, features)
        for layer in (self.qkv, self.out, self.fc1, self.fc2):
            _uniform_init(layer)

    def forward(self, x):
        n, t, k = x.shape
        q, key, v = self.qkv(self.norm1(x)).reshape(n, t, 3, self.n_heads, k // self.n_heads).permute(2, 0, 3, 1, 4)
        o = nn.functional.scaled_dot_product_attention(q, key, v, is_causal=True)  # (N, H, T, Dh)
        h = x + self.out(o.transpose(1, 2).reshape(n, t, k))
        return h + self.fc2(nn.functional.gelu(self.fc1(self.norm2(h)), approximate="tanh"))


class _Positions(nn.Module):
    """A learned vector per position, added to the tokens (its own module, so parameters list as minflow's)."""

    def __init__(self, n_tokens, features):
        super().__init__()
        self.P = nn.Parameter(0.02 * torch.randn(n_tokens, features))

    def forward(self, h):
        return h + self.P[: h.shape[1]]


class _TarFlowBlock(nn.Module):
    """z_t = (x_t - mu_t) exp(-alpha_t), (mu, alpha) from a causal Transformer over (start, x_1..x_{T-1})."""

    def __init__(self, features, n_tokens, hidden, depth, n_heads, mlp_ratio, alpha_bound):
        super().__init__()
        self.start = nn.Parameter(torch.zeros(features))
        self.embed = nn.Linear(features, hidden)
        _uniform_init(self.embed)
        self.pos = _Positions(n_tokens, hidden)
        self.layers = nn.ModuleList(_TransformerLayer(hidden, n_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, 2 * features)
        _zero_init(self.head)
        self.d, self.bound = features, alpha_bound

    def _mu_alpha(self, x):
        u = torch.cat([self.start.expand(x.shape[0], 1, self.d), x[:, :-1]], dim=1)  # shift by one
        h = self.pos(self.embed(u))
        for layer in self.layers:
            h = layer(h)
        mu, a = self.head(self.norm(h)).chunk(2, dim=-1)
        return mu, self.bound * torch.tanh(a / self.bound)

    def forward(self, x):
        mu, alpha = self._mu_alpha(x)
        return (x - mu) * torch.exp(-alpha), -alpha.sum(dim=(1, 2))

    def inverse(self, z):
        x = torch.zeros_like(z)
        for t in range(z.shape[1]):  # token t needs x_1..x_{t-1}: one causal pass over that prefix
            mu, alpha = self._mu_alpha(x[:, : t + 1])
            x[:, t] = z[:, t] * torch.exp(alpha[:, t]) + mu[:, t]
        return x


class TorchTarFlow(nn.Module):
    """TarFlow in PyTorch: logit, p x p patches, TarFlow blocks with the token order reversed between them."""

    def __init__(
        self, patch=2, blocks=6, hidden=64, depth=1, n_heads=4, mlp_ratio=4, alpha_bound=2.0, size=8, alpha=0.05
    ):
        super().__init__()
        self.patch, self.size, self.alpha = patch, size, alpha
        t, d = (size // patch) ** 2, patch * patch
        self.blocks = nn.ModuleList(
            _TarFlowBlock(d, t, hidden, depth, n_heads, mlp_ratio, alpha_bound) for _ in range(blocks)
        )

    def log_prob(self, v):
        a, p, n = self.alpha, self.patch, v.shape[0]
        q = a + (1 - 2 * a) * v
        x = torch.log(q) - torch.log1p(-q)
        logdet = (math.log(1 - 2 * a) - torch.log(q) - torch.log1p(-q)).sum(dim=(1, 2, 3))
        g = self.size // p
        x = x.reshape(n, 1, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(n, g * g, p * p)  # patchify
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = x.flip(1)  # reverse the token order
            x, ld = block(x)
            logdet = logdet + ld
        return -0.5 * (x * x).sum(dim=(1, 2)) - 0.5 * x[0].numel() * LOG_2PI + logdet

    @torch.no_grad()
    def sample(self, n):
        p, g = self.patch, self.size // self.patch
        x = torch.randn(n, g * g, p * p)
        for i, block in reversed(list(enumerate(self.blocks))):
            x = block.inverse(x)
            if i > 0:
                x = x.flip(1)
        x = x.reshape(n, g, g, 1, p, p).permute(0, 3, 1, 4, 2, 5).reshape(n, 1, self.size, self.size)  # unpatchify
        return (torch.sigmoid(x) - self.alpha) / (1 - 2 * self.alpha)


# -- the same parameters in both frameworks (for the equivalence tests) --------------


@torch.no_grad()
def load_minflow_params(torch_model, minflow_model):
    """Copy a minflow model's parameters into the PyTorch model of the same architecture.

    R2, D8 and TarFlow list their parameters in the same order in both
    frameworks (minflow's Linear W is (in, out), PyTorch's weight (out, in):
    transposed; every other array, e.g. positional embeddings, as it is);
    P2 keeps layer k's u, w, b in row k of PyTorch's stacked tensors.
    """
    params = minflow_model.params
    if isinstance(torch_model, TorchP2):
        for name in ("u", "w", "b"):
            rows = [params[f"flow.{k}.{name}"] for k in range(getattr(torch_model, name).shape[0])]
            getattr(torch_model, name).copy_(
                torch.from_numpy(numpy.stack(rows)).reshape(getattr(torch_model, name).shape)
            )
        return torch_model
    ours = list(params)
    theirs = list(torch_model.parameters())
    if len(ours) != len(theirs):
        raise ValueError(
            f"{len(ours)} minflow parameters against {len(theirs)} PyTorch ones: not the same architecture."
        )
    for (name, a), p in zip(params.items(), theirs):
        value = torch.from_numpy(a.T.copy() if name.endswith(".W") and a.ndim == 2 else a.copy())
        if tuple(value.shape) != tuple(p.shape):
            raise ValueError(f"shape {tuple(value.shape)} against {tuple(p.shape)}: not the same architecture.")
        p.copy_(value)
    return torch_model
