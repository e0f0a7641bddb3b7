"""The reference models written in JAX, for side-by-side timing only.

JAX (with optax for Adam) is an optional dependency of the benchmarks, never
of minflow. Each model follows reference-problems.md section 3 with the same
architecture as minflow's and ``torch_models.py``'s; a model is a pure
function of a parameter pytree, built from a minflow model's parameters
(``params_from_minflow``), so all three frameworks start from the same
weights:

- ``r2_log_prob`` / ``r2_sample``: 8 affine couplings on 2D data;
- ``p2_sample_and_log_q`` and ``jax_energy``: K planar layers trained by
  reverse KL on the energy targets U1..U4 (with the soft wall);
- ``d8_log_prob`` / ``d8_sample``: the multi-scale RealNVP on 8x8 digits.

``train_step`` and ``sampler`` wrap them with ``jax.jit`` and optax's Adam.
Float64 (for the equality checks) needs ``jax.config.update("jax_enable_x64", True)``
before any array is made; timing runs in float32, as minflow's.
"""

import math

import jax
import jax.numpy as jnp
import numpy
import optax

__all__ = [
    "d8_log_prob",
    "d8_sample",
    "jax_energy",
    "p2_sample_and_log_q",
    "params_from_minflow",
    "r2_log_prob",
    "r2_sample",
    "sampler",
    "train_step",
]

LOG_2PI = math.log(2 * math.pi)


# -- R2 -------------------------------------------------------------------------


def _mlp(layers, h):
    """Linear -> ReLU -> ... -> Linear; each layer is (W (in, out), b (out,)), as minflow's Linear."""
    for W, b in layers[:-1]:
        h = jax.nn.relu(h @ W + b)
    W, b = layers[-1]
    return h @ W + b


def _coupling_2d(net, copy_index, x, sign):
    """Affine coupling on 2D data, copying x[:, copy_index]: sign +1 forward (z_b = x_b e^s + t), -1 inverse."""
    a = x[:, copy_index : copy_index + 1]
    b = x[:, 1 - copy_index : 2 - copy_index]
    s_raw, t = jnp.split(_mlp(net, a), 2, axis=1)
    s = jnp.tanh(s_raw)
    b = b * jnp.exp(s) + t if sign > 0 else (b - t) * jnp.exp(-s)
    out = jnp.concatenate([a, b], axis=1) if copy_index == 0 else jnp.concatenate([b, a], axis=1)
    return out, s.sum(axis=1)


def r2_log_prob(params, x):
    """log q(x) (N,) of R2: layer k copies x[k % 2]; base N(0, I2)."""
    logdet = 0.0
    for k, net in enumerate(params):
        x, ld = _coupling_2d(net, k % 2, x, +1)
        logdet = logdet + ld
    return -0.5 * (x * x).sum(axis=1) - LOG_2PI + logdet


def r2_sample(params, key, n):
    """n samples of R2 (n, 2), last layer inverted first."""
    z = jax.random.normal(key, (n, 2), dtype=params[0][0][0].dtype)
    for k in reversed(range(len(params))):
        z, _ = _coupling_2d(params[k], k % 2, z, -1)
    return z


# -- P2 -------------------------------------------------------------------------


def jax_energy(name):
    """U_k(z) + wall(z) of reference-problems.md section 2, as a function of z (N, 2)."""

    def w1(z1):
        return jnp.sin(0.5 * math.pi * z1)

    def two_bumps(z1, z2, shift, width_a, width_b):
        a = -0.5 * ((z2 - w1(z1)) / width_a) ** 2
        b = -0.5 * ((z2 - w1(z1) + shift) / width_b) ** 2
        return -jnp.logaddexp(a, b)

    def u(z):
        z1, z2 = z[:, 0], z[:, 1]
        if name == "U1":
            r = jnp.sqrt(z1 * z1 + z2 * z2)
            rest = jnp.logaddexp(-0.5 * ((z1 - 2) / 0.6) ** 2, -0.5 * ((z1 + 2) / 0.6) ** 2)
            value = 0.5 * ((r - 2) / 0.4) ** 2 - rest
        elif name == "U2":
            value = 0.5 * ((z2 - w1(z1)) / 0.4) ** 2
        elif name == "U3":
            value = two_bumps(z1, z2, 3 * jnp.exp(-0.5 * ((z1 - 1) / 0.6) ** 2), 0.35, 0.35)
        elif name == "U4":
            value = two_bumps(z1, z2, 3 * jax.nn.sigmoid((z1 - 1) / 0.3), 0.4, 0.35)
        else:
            raise ValueError(f"Unknown energy target {name!r}; expected U1, U2, U3 or U4.")
        over = jnp.maximum(jnp.abs(z1) - 3.5, 0)
        return value + 50 * over * over

    return u


def p2_sample_and_log_q(params, z):
    """(x, log q(x)) for base draws z (N, D) pushed through the planar layers, last layer first.

    params: {"u": (K, D), "w": (K, D), "b": (K,)}; x = z + u_hat tanh(w.z + b),
    u_hat = u + (m(w.u) - w.u) w / |w|^2, m(a) = -1 + softplus(a).
    """
    log_q = -0.5 * (z * z).sum(axis=1) - 0.5 * z.shape[1] * LOG_2PI
    for k in reversed(range(params["u"].shape[0])):
        u, w, b = params["u"][k], params["w"][k], params["b"][k]
        wu = w @ u
        sp = jax.nn.softplus(wu)
        u_hat = u + (sp - 1 - wu) * w / (w @ w)
        t = jnp.tanh(z @ w + b)  # (N,)
        log_q = log_q - jnp.log(t * t + (1 - t * t) * sp)  # log(1 + u_hat.psi), without cancellation
        z = z + t[:, None] * u_hat
    return z, log_q


# -- D8 -------------------------------------------------------------------------


def _conv(x, W, b):
    """3x3 (any odd K) same-padded, stride-1 convolution, NCHW / OIHW as minflow's Conv2d."""
    y = jax.lax.conv_general_dilated(x, W, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + b[None, :, None, None]


def _resnet(net, x):
    """conv_in, residual blocks h + conv_b(relu(conv_a(h))), relu, conv_out; net is a list of (W, b)."""
    h = _conv(x, *net[0])
    for i in range(1, len(net) - 1, 2):
        h = h + _conv(jax.nn.relu(_conv(h, *net[i])), *net[i + 1])
    return _conv(jax.nn.relu(h), *net[-1])


def _checkerboard(net, copied, x, sign):
    """Checkerboard affine coupling: the net sees x * copied, s and t are zero on the copied pixels."""
    c = x.shape[1]
    h = _resnet(net, x * copied)
    free = 1 - copied
    s, t = jnp.tanh(h[:, :c]) * free, h[:, c:] * free
    if sign > 0:
        return x * jnp.exp(s) + t, s.sum(axis=(1, 2, 3))
    return (x - t) * jnp.exp(-s), None


def _channel(net, first, x, sign):
    """Channel affine coupling: copies the first (first=True) or second half of the channels."""
    half = x.shape[1] // 2
    a, b = (x[:, :half], x[:, half:]) if first else (x[:, half:], x[:, :half])
    h = _resnet(net, a)
    s, t = jnp.tanh(h[:, :half]), h[:, half:]
    b = b * jnp.exp(s) + t if sign > 0 else (b - t) * jnp.exp(-s)
    out = jnp.concatenate([a, b], 1) if first else jnp.concatenate([b, a], 1)
    return out, s.sum(axis=(1, 2, 3))


def _masks(size, dtype):
    """The checkerboard masks (1, 1, H, W) of parity 0 and 1, as minflow's checkerboard_mask."""
    i, j = numpy.meshgrid(numpy.arange(size), numpy.arange(size), indexing="ij")
    return [jnp.asarray(((i + j) % 2 == q)[None, None], dtype=dtype) for q in (0, 1)]


def d8_log_prob(params, v, alpha=0.05):
    """log q(v) (N,) of D8 on dequantised pixels v (N, 1, S, S): logit, 3 + 3 + 4 couplings, base N(0, I)."""
    first, middle, last = params
    n, size = v.shape[0], v.shape[2]
    big, small = _masks(size, v.dtype), _masks(size // 2, v.dtype)
    p = alpha + (1 - 2 * alpha) * v
    x = jnp.log(p) - jnp.log1p(-p)
    logdet = (math.log(1 - 2 * alpha) - jnp.log(p) - jnp.log1p(-p)).sum(axis=(1, 2, 3))
    for q, net in zip((0, 1, 0), first):
        x, ld = _checkerboard(net, big[q], x, +1)
        logdet = logdet + ld
    h = size // 2
    x = x.reshape(n, 1, h, 2, h, 2).transpose(0, 1, 3, 5, 2, 4).reshape(n, 4, h, h)  # squeeze
    for f, net in zip((True, False, True), middle):
        x, ld = _channel(net, f, x, +1)
        logdet = logdet + ld
    kept, factored = x[:, :2], x[:, 2:]
    for q, net in zip((0, 1, 0, 1), last):
        kept, ld = _checkerboard(net, small[q], kept, +1)
        logdet = logdet + ld
    z = jnp.concatenate([kept, factored], 1)
    return -0.5 * (z * z).sum(axis=(1, 2, 3)) - 0.5 * z[0].size * LOG_2PI + logdet


def d8_sample(params, key, n, size=8, alpha=0.05):
    """n images v (n, 1, S, S) of D8: base draw, couplings inverted last first, unsqueeze, sigmoid."""
    first, middle, last = params
    h = size // 2
    dtype = first[0][0][0].dtype
    big, small = _masks(size, dtype), _masks(h, dtype)
    z = jax.random.normal(key, (n, 4, h, h), dtype=dtype)
    kept = z[:, :2]
    for q, net in reversed(list(zip((0, 1, 0, 1), last))):
        kept, _ = _checkerboard(net, small[q], kept, -1)
    x = jnp.concatenate([kept, z[:, 2:]], 1)
    for f, net in reversed(list(zip((True, False, True), middle))):
        x, _ = _channel(net, f, x, -1)
    x = x.reshape(n, 1, 2, 2, h, h).transpose(0, 1, 4, 2, 5, 3).reshape(n, 1, size, size)  # unsqueeze
    for q, net in reversed(list(zip((0, 1, 0), first))):
        x, _ = _checkerboard(net, big[q], x, -1)
    return (jax.nn.sigmoid(x) - alpha) / (1 - 2 * alpha)


# -- the same parameters as a minflow model -------------------------------------


def params_from_minflow(kind, minflow_model):
    """The parameter pytree of ``kind`` ("r2", "p2" or "d8") holding a copy of a minflow model's parameters.

    R2: one list of (W, b) per coupling (minflow's Linear layout, W (in, out));
    P2: {"u", "w", "b"} with layer k in row k; D8: (first, middle, last)
    scales, each a list of couplings, each a list of conv (W (O, C, K, K), b)
    in minflow's order (conv_in, block convs, conv_out).
    """
    params = minflow_model.params
    if kind == "p2":
        n_layers = len(minflow_model.flow)
        rows = {name: [numpy.ravel(params[f"flow.{k}.{name}"]) for k in range(n_layers)] for name in ("u", "w", "b")}
        stacked = {"u": numpy.stack(rows["u"]), "w": numpy.stack(rows["w"]), "b": numpy.concatenate(rows["b"])}
        return {name: jnp.asarray(a) for name, a in stacked.items()}  # u, w (K, D); b (K,)
    values = [jnp.asarray(numpy.array(a)) for a in params.values()]
    pairs = list(zip(values[0::2], values[1::2]))  # (W, b) of every linear or conv layer, in order
    n_couplings = {"r2": len(minflow_model.flow), "d8": 3 + 3 + 4}.get(kind)
    if n_couplings is None:
        raise ValueError(f"kind must be 'r2', 'p2' or 'd8'; got {kind!r}.")
    per_net = len(pairs) // n_couplings
    nets = [pairs[i : i + per_net] for i in range(0, len(pairs), per_net)]
    return nets if kind == "r2" else (nets[:3], nets[3:6], nets[6:])


# -- jitted training step and sampler ----------------------------------------------


def train_step(loss, params, lr, weight_decay=0.0):
    """A jitted step (params, opt_state, batch) -> (params, opt_state, loss) of ``loss(params, batch)``.

    Adam (beta1 0.9, beta2 0.999, eps 1e-8); ``weight_decay`` is coupled L2
    (added to the gradient before Adam, as minflow's and PyTorch's Adam do).
    Returns (step, opt_state).
    """
    adam = optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8)
    optimizer = optax.chain(optax.add_decayed_weights(weight_decay), adam) if weight_decay else adam

    @jax.jit
    def step(params, opt_state, batch):
        value, grads = jax.value_and_grad(loss)(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step, optimizer.init(params)


def sampler(sample_fn, n):
    """jax.jit of sample_fn(params, key, n) with n fixed."""
    return jax.jit(lambda params, key: sample_fn(params, key, n))
