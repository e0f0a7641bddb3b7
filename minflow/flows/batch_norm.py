"""Batch normalization as a flow layer (RealNVP; Dinh, Sohl-Dickstein & Bengio 2016, arXiv:1605.08803, section 3.7, appendix E).

Direction: forward maps data x to latent z.

Per channel (axis 1: features of (N, D), channels of (N, C, H, W), with the
statistics taken over the batch and every pixel):

    forward:  z = (x - mu) / sqrt(var + eps) * exp(log_gamma) + beta
    inverse:  x = (z - beta) * exp(-log_gamma) * sqrt(var + eps) + mu
    log|det dz/dx| = H * W * sum_c (log_gamma_c - 0.5 * log(var_c + eps))

In training mode mu and var are the statistics of the current batch, and
exponential running averages of them are kept; in evaluation mode the
running averages are used, and the layer is a fixed affine map per channel.
As in RealNVP, the log-det in training mode treats the batch statistics as
constants (see the class docstring for what that implies).
"""

import math

from ..backend import DEFAULT_DTYPE, get_array_module, get_backend, zeros
from .base import Bijection, _check_direction
from .shapes import channel_axes, check_channels, per_channel

__all__ = ["BatchNorm", "set_training"]


def set_training(module, training=True):
    """Put every BatchNorm inside ``module`` (a layer, Flow or FlowModel) in training or evaluation mode.

    Returns ``module``. Walks the children, so ``set_training(model, False)``
    before evaluating a test NLL or sampling switches the whole model.
    """
    if isinstance(module, BatchNorm):
        module.training = bool(training)
    for child in module._children.values():
        set_training(child, training)
    return module


class BatchNorm(Bijection):
    """RealNVP's batch normalization flow layer, with running statistics.

    Args:
        features: the size of axis 1, D features of vectors or C channels of images.
        momentum: weight of the newest batch in the running averages,
            running = (1 - momentum) * running + momentum * batch
            (default 0.1, an average over roughly the last 10 batches; the
            running variance averages the biased batch variance, the same
            statistic the layer divides by in training).
        eps: added to the variance, so a constant channel does not divide by 0.
        dtype: parameter dtype (float32 to train, float64 to check).

    Shapes:
        x, z: (N, C) or (N, C, H, W) (any (N, C, ...)); logdet: (N,).
        log_gamma, beta, running_mean, running_var: (C,).

    Modes:
        ``layer.training`` (True at construction; ``train()`` / ``eval()``,
        or ``set_training(model, flag)`` for a whole model).
        - training forward: mu, var of the batch; running averages updated.
        - evaluation forward: the running mu, var; an exact bijection of each
          sample, with an exact log-det.
        - inverse in training mode uses the statistics of the last
          training-mode forward batch (so inverse(forward(x)) == x holds in
          training mode too), or the running statistics if no forward batch
          has been seen since construction; in evaluation mode the running
          statistics.

    The log-det in training mode:
        it is log|det| of the per-sample map with mu and var frozen, as in
        RealNVP. The map of a whole batch couples its samples (each z
        depends on every x through mu and var), and that batch map is not
        even invertible: adding a constant to a channel of every sample, or
        scaling its deviations from the mean, leaves z unchanged (2 lost
        directions per channel). So exp(log q) in training mode is not a
        normalised density of one sample: the training loss is a
        batch-dependent approximation that becomes the exact NLL of the
        evaluation-mode model as the batch statistics approach the running
        ones. Report test NLLs in evaluation mode. The backward, though,
        follows the whole computation: gradients include the dependence of
        z and of the log-det on x through mu and var (d logdet / dx =
        -(H W / N) * (x - mu) / (var + eps) summed over the batch's dlogdet).

    Buffers:
        ``running_mean``, ``running_var`` (saved with the model).

    Caches:
        forward keeps xhat = (x - mu) / sqrt(var + eps), 1 / sqrt(var + eps)
        and whether the statistics came from the batch (training) or are
        constants (evaluation); the backward needs all three. inverse keeps
        xhat of its output and 1 / sqrt(var + eps). Besides, each pass
        records the (mu, var) it used, two (C,) arrays that ``release_caches``
        keeps: memory by inversion (``Flow(recompute="invert")``) rebuilds
        the input with exactly those statistics and redoes the pass's cache
        without updating the running averages, in either mode.

    Reference:
        Dinh, Sohl-Dickstein & Bengio (2016), "Density estimation using Real
        NVP", section 3.7 and appendix E; Ioffe & Szegedy (2015),
        arXiv:1502.03167, for batch normalization and its backward pass.
    """

    def __init__(self, features, momentum=0.1, eps=1e-5, dtype=DEFAULT_DTYPE):
        super().__init__()
        if int(features) != features or features < 1:
            raise ValueError(f"BatchNorm features must be a positive integer; got {features!r}.")
        if not 0 < momentum <= 1:
            raise ValueError(f"BatchNorm momentum must be in (0, 1]; got {momentum!r}.")
        if not eps > 0:
            raise ValueError(f"BatchNorm eps must be positive; got {eps!r}.")
        self.features = int(features)
        self.momentum = momentum
        self.eps = eps
        self.training = True
        xp = get_backend()
        self.add_param("log_gamma", zeros((self.features,), dtype, xp))
        self.add_param("beta", zeros((self.features,), dtype, xp))
        self.running_mean = zeros((self.features,), dtype, xp)
        self.running_var = xp.ones((self.features,), dtype=dtype)
        self._batch_stats = None  # (mean, var) of the last training-mode forward batch
        self._pass_stats = {}  # direction -> (mean, var, from the batch?) its last pass used

    def train(self, mode=True):
        """Training mode (batch statistics) if ``mode``, else evaluation mode; returns self."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Evaluation mode: the running statistics; returns self."""
        return self.train(False)

    # -- running statistics, saved with the model --------------------------------

    def _own_buffers(self):
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def _set_own_buffer(self, name, value):
        if name not in ("running_mean", "running_var"):
            super()._set_own_buffer(name, value)  # raises: no such buffer
        elif value.shape != (self.features,):
            raise ValueError(f"BatchNorm buffer {name} must have shape ({self.features},); got {tuple(value.shape)}.")
        else:
            setattr(self, name, value)
            self._batch_stats = None
            self._pass_stats = {}

    # -- helpers ------------------------------------------------------------------

    def _check_input(self, x, name):
        fix = "Build BatchNorm(features) with the number of channels of axis 1."
        check_channels(x, name, self.features, "BatchNorm", fix)

    def _logdet(self, x, inv_std, sign):
        """sign * H * W * sum_c (log_gamma_c + log inv_std_c), the same for every sample, (N,)."""
        xp = get_array_module(x)
        spatial = math.prod(x.shape[2:])
        total = sign * spatial * (self._own_params["log_gamma"] + xp.log(inv_std)).sum()
        return xp.ones(x.shape[0], dtype=x.dtype) * total.astype(x.dtype)  # (N,)

    def _normalize(self, x, mean, var):
        """z = (x - mean) / sqrt(var + eps) * exp(log_gamma) + beta; returns z, xhat, inv_std."""
        xp = get_array_module(x)
        inv_std = 1.0 / xp.sqrt(var + self.eps)  # (C,)
        xhat = (x - per_channel(mean, x)) * per_channel(inv_std, x)  # (N, C, H, W)
        gamma = xp.exp(per_channel(self._own_params["log_gamma"], x))
        return xhat * gamma + per_channel(self._own_params["beta"], x), xhat, inv_std

    def _denormalize(self, z, mean, var):
        """x = (z - beta) * exp(-log_gamma) * sqrt(var + eps) + mean; returns x, xhat, inv_std."""
        xp = get_array_module(z)
        inv_std = 1.0 / xp.sqrt(var + self.eps)  # (C,)
        gamma_inv = xp.exp(-per_channel(self._own_params["log_gamma"], z))
        xhat = (z - per_channel(self._own_params["beta"], z)) * gamma_inv  # (N, C, H, W)
        return xhat / per_channel(inv_std, z) + per_channel(mean, z), xhat, inv_std

    def _stats_of(self, direction, caller):
        """The (mean, var, from the batch?) the last ``direction`` pass used; a clear error if none ran."""
        stats = self._pass_stats.get(direction)
        if stats is None:
            raise RuntimeError(
                f"BatchNorm.{caller}() needs the statistics of its {direction} pass, "
                f"but {direction}() has not been called. Call {direction}() first."
            )
        return stats

    # -- the four passes ----------------------------------------------------------

    def forward(self, x):
        self._check_input(x, "x")
        if self.training:
            axes = channel_axes(x)
            mean, var = x.mean(axis=axes), x.var(axis=axes)  # (C,) each, biased variance
            self._batch_stats = (mean, var)
            m = self.momentum
            self.running_mean = (1 - m) * self.running_mean + m * mean
            self.running_var = (1 - m) * self.running_var + m * var
        else:
            mean, var = self.running_mean, self.running_var
        self._pass_stats["forward"] = (mean, var, self.training)
        z, xhat, inv_std = self._normalize(x, mean, var)
        self._save_cache("forward", (xhat, inv_std, self.training))
        return z, self._logdet(x, inv_std, 1.0)

    def inverse(self, z):
        self._check_input(z, "z")
        if self.training and self._batch_stats is not None:
            mean, var = self._batch_stats
        else:
            mean, var = self.running_mean, self.running_var
        self._pass_stats["inverse"] = (mean, var, False)
        x, xhat, inv_std = self._denormalize(z, mean, var)
        self._save_cache("inverse", (xhat, inv_std))
        return x, self._logdet(z, inv_std, -1.0)

    def backward(self, dz, dlogdet):
        xhat, inv_std, batch_stats = self._take_cache("forward", "backward")
        xp = get_array_module(xhat)
        axes = channel_axes(xhat)
        spatial = math.prod(xhat.shape[2:])
        gamma = xp.exp(per_channel(self._own_params["log_gamma"], xhat))
        s = dlogdet.sum()
        # logdet = H W sum_c (log_gamma_c - 0.5 log(var_c + eps)) for every sample
        self._own_grads["log_gamma"] += spatial * s
        # z = xhat * gamma + beta
        self._own_grads["beta"] += dz.sum(axis=axes)  # (C,)
        self._own_grads["log_gamma"] += (dz * xhat * gamma).sum(axis=axes)  # (C,)
        dxhat = dz * gamma  # (N, C, H, W)
        inv_std_b = per_channel(inv_std, xhat)
        if not batch_stats:
            # xhat = (x - running_mean) * inv_std, constants
            return dxhat * inv_std_b
        # xhat = (x - mu) * inv_std with mu, var of the batch (M = N H W entries per channel):
        # dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        mean_dxhat = dxhat.mean(axis=axes, keepdims=True)  # (1, C, 1, 1)
        mean_dxhat_xhat = (dxhat * xhat).mean(axis=axes, keepdims=True)  # (1, C, 1, 1)
        dx = inv_std_b * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)
        # logdet through var: dL/dvar = -0.5 H W s / (var + eps), dvar/dx = 2 (x - mu) / M
        dx -= (s / xhat.shape[0]) * xhat * inv_std_b
        return dx

    def inverse_backward(self, dx, dlogdet):
        xhat, inv_std = self._take_cache("inverse", "inverse_backward")
        xp = get_array_module(xhat)
        axes = channel_axes(xhat)
        spatial = math.prod(xhat.shape[2:])
        gamma_inv = xp.exp(-per_channel(self._own_params["log_gamma"], xhat))
        # logdet = -H W sum_c (log_gamma_c - 0.5 log(var_c + eps)); mu, var are constants here
        self._own_grads["log_gamma"] -= spatial * dlogdet.sum()
        # x = xhat / inv_std + mu
        dxhat = dx / per_channel(inv_std, xhat)  # (N, C, H, W)
        # xhat = (z - beta) * exp(-log_gamma): d/dbeta = -exp(-log_gamma), d/dlog_gamma = -xhat
        self._own_grads["log_gamma"] -= (dxhat * xhat).sum(axis=axes)  # (C,)
        dz = dxhat * gamma_inv
        self._own_grads["beta"] -= dz.sum(axis=axes)  # (C,)
        return dz

    # -- memory by inversion: the recorded statistics, no running-average update ------

    def recompute_error(self, direction):
        """None: both directions rebuild with the statistics their pass recorded (below)."""
        _check_direction(direction)

    def rebuild_input(self, out, direction):
        _check_direction(direction)
        mean, var, _ = self._stats_of(direction, "rebuild_input")
        if direction == "forward":
            return self._denormalize(out, mean, var)[0]
        return self._normalize(out, mean, var)[0]

    def rebuild_pass(self, out, direction):
        _check_direction(direction)
        mean, var, from_batch = self._stats_of(direction, "rebuild_pass")
        if direction == "forward":
            x, xhat, inv_std = self._denormalize(out, mean, var)  # xhat from z, as the forward had it
            self._save_cache("forward", (xhat, inv_std, from_batch))
            return x
        z, xhat, inv_std = self._normalize(out, mean, var)
        self._save_cache("inverse", (xhat, inv_std))
        return z
