"""Metrics and losses of a flow model, each written once.

    bits_per_dim(log_q, D, k)      -(log q - D ln k) / (D ln 2): nats per sample to bits per dimension
    dataset_nll(log_prob, batches) mean -log q over a test set, accumulated in float64 on the host
    nll_and_gradient(log_q)        a batch's mean NLL and its dL/dlog_q, for maximum likelihood
    reverse_kl_and_gradient(x, log_q, energy)
                                   a batch's E_q[log q + U] and its dL/dx, dL/dlog_q, for reverse KL
    reverse_kl(model, target)      KL(q || p) against an energy target, with its standard error
    reverse_kl_from_samples(x, log_q, target)
    grid_log_density(log_prob, n, box)
                                   log q on an n x n grid of [-box, box]^2 (integrals, plots)

The losses' gradients are what ``FlowModel.log_prob_backward`` and
``sample_backward`` take, so ``nll_and_backward``, ``reverse_kl_and_backward``
and the divergence diagnosis (``diagnostics``) share one formula each. The
energy-target estimates live beside the targets, in ``data.energy``, and are
collected here.
"""

import math

from .backend import get_array_module, to_numpy
from .checks import check_positive_int
from .data.energy import grid_log_density, reverse_kl, reverse_kl_from_samples

__all__ = [
    "bits_per_dim",
    "dataset_nll",
    "grid_log_density",
    "nll_and_gradient",
    "reverse_kl",
    "reverse_kl_and_gradient",
    "reverse_kl_from_samples",
]


def bits_per_dim(log_q, event_size, n_levels=None):
    """Log-likelihoods (nats per sample) in bits per dimension: -(log q - D ln k) / (D ln 2).

    Args:
        log_q: log q per sample (array or float), in nats.
        event_size: D, the number of dimensions of one sample (64 for 8x8 images).
        n_levels: k for discrete data read as k bins per dimension (v = (x + u) / k,
            log q(x) >= log q(v) - D ln k); None for continuous data (no correction).
    """
    check_positive_int(event_size, "event_size")
    if n_levels is not None:
        check_positive_int(n_levels, "n_levels")
    correction = event_size * math.log(n_levels) if n_levels else 0.0
    return -(log_q - correction) / (event_size * math.log(2))


def dataset_nll(log_prob, batches):
    """Mean -log q(x) in nats over every sample of ``batches`` (an iterable of (B, ...) arrays), a float.

    Args:
        log_prob: ``f(x) -> (B,)`` log-density, e.g. ``model.log_prob``.
        batches: the test set, in batches that fit in memory.
    """
    total, count = 0.0, 0
    for x in batches:
        total += float(to_numpy(log_prob(x)).astype("float64").sum())
        count += x.shape[0]
    if count == 0:
        raise ValueError("dataset_nll got no samples; pass at least one non-empty batch.")
    return -total / count


def nll_and_gradient(log_q):
    """L = -(1/N) sum_n log q_n of a batch (0-d array) and dL/dlog_q = -1/N, shape (N,)."""
    xp = get_array_module(log_q)
    n = log_q.shape[0]
    return -log_q.mean(), xp.full(n, -1.0 / n, dtype=log_q.dtype)


def reverse_kl_and_gradient(x, log_q, energy):
    """L = (1/N) sum_n [log q(x_n) + U(x_n)] of samples of q, with dL/dx = U'(x) / N and dL/dlog_q = 1/N.

    Args:
        x: (N, ...) samples drawn through the inverse pass; log_q: (N,) their log q.
        energy: has ``energy(x)`` -> (N,) U(x) and ``grad(x)`` -> dU/dx, or
            ``energy_and_grad(x)`` -> both, which is used where it exists.

    Returns:
        (L as a 0-d array, dL/dx (N, ...), dL/dlog_q (N,)); KL(q || p) = L + ln Z.
    """
    xp = get_array_module(log_q)
    n = x.shape[0]
    if hasattr(energy, "energy_and_grad"):  # an EnergyTarget evaluates its potential once for both
        u, du = energy.energy_and_grad(x)  # (N,), (N, ...)
    else:
        u, du = energy.energy(x), energy.grad(x)
    return (log_q + u).mean(), du / n, xp.full(n, 1.0 / n, dtype=log_q.dtype)
