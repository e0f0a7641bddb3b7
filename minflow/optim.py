"""Optimizers over ``params`` / ``grads`` dicts: SGD and Adam, written out.

Both update parameters in place (so every layer sees the new values) and
never zero the gradients: call ``model.zero_grads()`` before each backward.

    SGD:   v = momentum * v + g;   theta -= lr * v
    Adam:  m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
           theta -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
           (Kingma & Ba 2015, arXiv:1412.6980, Algorithm 1)
    AdamW: theta -= lr * weight_decay * theta, then the Adam step on the plain gradient
           (decoupled weight decay; Loshchilov & Hutter 2019, arXiv:1711.05101)

Options shared by all: coupled L2 (SGD, Adam) weight decay (g += weight_decay * theta,
on every parameter), clipping of the global gradient norm, and a learning-rate
schedule (step t uses lr * schedule(t), e.g. ``schedule.WarmupCosine``).
"""

import math

from .backend import get_array_module

__all__ = ["SGD", "Adam", "AdamW", "clip_grad_norm", "global_grad_norm"]


def global_grad_norm(grads):
    """sqrt(sum over all gradients of g^2), as a 0-d array (no host transfer)."""
    grads = list(grads.values())
    xp = get_array_module(grads[0])
    return xp.sqrt(sum(xp.sum(g * g) for g in grads))


def clip_grad_norm(grads, max_norm):
    """Scale all gradients in place so their global norm is at most ``max_norm``.

    Returns the norm before clipping (0-d array).
    """
    norm = global_grad_norm(grads)
    xp = get_array_module(norm)
    factor = xp.minimum(1.0, max_norm / (norm + 1e-6))
    for g in grads.values():
        g *= factor.astype(g.dtype)
    return norm


class _Optimizer:
    def __init__(self, params, grads, lr, weight_decay=0.0, clip_norm=None, schedule=None):
        if params.keys() != grads.keys():
            raise ValueError("params and grads must have the same keys (pass model.params, model.grads).")
        if not lr > 0:
            raise ValueError(f"lr must be positive; got {lr}.")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0; got {weight_decay}.")
        if clip_norm is not None and not clip_norm > 0:
            raise ValueError(f"clip_norm must be positive or None; got {clip_norm}.")
        if schedule is not None and not callable(schedule):
            raise TypeError(f"schedule must be a function of the step t -> factor (or None); got {schedule!r}.")
        self.params, self.grads = params, grads
        self.lr, self.weight_decay, self.clip_norm = lr, weight_decay, clip_norm
        self.schedule = schedule
        self.t = 0  # steps taken

    def current_lr(self, t=None):
        """The learning rate of step t (default ``self.t``): lr * schedule(t), or lr without a schedule."""
        t = self.t if t is None else t
        return self.lr if self.schedule is None else self.lr * self.schedule(t)

    def _prepared_grads(self):
        """Clip the global gradient norm, then add coupled L2 decay (in place)."""
        if self.clip_norm is not None:
            clip_grad_norm(self.grads, self.clip_norm)
        if self.weight_decay:
            for name, g in self.grads.items():
                g += self.weight_decay * self.params[name]  # d/dtheta of (wd/2) |theta|^2
        return self.grads

    def state(self):
        """dict name -> array of the optimizer's state (for checkpoints)."""
        raise NotImplementedError

    def load_state(self, state):
        """Restore ``state()`` output; shapes must match."""
        raise NotImplementedError


class SGD(_Optimizer):
    """Stochastic gradient descent with optional momentum.

    Args:
        params, grads: dicts from ``model.params`` and ``model.grads``.
        lr: learning rate. momentum: 0 for plain SGD.
        weight_decay: coupled L2 coefficient. clip_norm: max global grad norm.
        schedule: ``f(t) -> factor`` of lr at step t (``schedule.WarmupCosine``), or None.
    """

    def __init__(self, params, grads, lr=1e-2, momentum=0.0, weight_decay=0.0, clip_norm=None, schedule=None):
        super().__init__(params, grads, lr, weight_decay, clip_norm, schedule)
        self.momentum = momentum
        self.velocity = {k: get_array_module(p).zeros_like(p) for k, p in params.items()}

    def step(self):
        self.t += 1
        lr = self.current_lr()
        for name, g in self._prepared_grads().items():
            v = self.velocity[name]
            v *= self.momentum
            v += g
            self.params[name] -= lr * v

    def state(self):
        out = {f"velocity.{k}": v for k, v in self.velocity.items()}
        out["t"] = get_array_module(next(iter(self.velocity.values()))).asarray(self.t)
        return out

    def load_state(self, state):
        for k in self.velocity:
            self.velocity[k][...] = state[f"velocity.{k}"]
        self.t = int(state["t"])


class Adam(_Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction.

    Args:
        params, grads: dicts from ``model.params`` and ``model.grads``.
        lr, betas, eps: as in the paper (defaults 1e-3, (0.9, 0.999), 1e-8).
        weight_decay: coupled L2 coefficient (added to the gradient).
        clip_norm: max global gradient norm, or None.
        schedule: ``f(t) -> factor`` of lr at step t (``schedule.WarmupCosine``), or None.
    """

    def __init__(
        self, params, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, clip_norm=None, schedule=None
    ):
        super().__init__(params, grads, lr, weight_decay, clip_norm, schedule)
        self.beta1, self.beta2 = betas
        self.eps = eps
        # m and v of every parameter are views into one flat array each, so that a step updates the
        # moments of all parameters in a few passes instead of a few passes per parameter array
        dtypes = {p.dtype for p in params.values()}
        if len(dtypes) > 1:
            raise ValueError(
                f"Adam expects every parameter in one dtype; got {sorted(str(d) for d in dtypes)}. "
                "Convert the model first (model.astype(dtype))."
            )
        xp = get_array_module(next(iter(params.values()))) if params else None
        total = sum(p.size for p in params.values())
        self._m_flat = xp.zeros(total, dtype=dtypes.pop()) if params else None  # (P,), P = number of parameters
        self._v_flat = xp.zeros_like(self._m_flat) if params else None
        self._slices, start = {}, 0
        for name, p in params.items():
            self._slices[name] = slice(start, start + p.size)
            start += p.size
        self.m = {k: self._m_flat[self._slices[k]].reshape(p.shape) for k, p in params.items()}  # views
        self.v = {k: self._v_flat[self._slices[k]].reshape(p.shape) for k, p in params.items()}

    def step(self):
        self.t += 1
        if not self.params:
            return
        b1, b2 = self.beta1, self.beta2
        # fold both bias corrections into one step size (same update, fewer array ops)
        step_size = self.current_lr() * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        eps_hat = self.eps * math.sqrt(1 - b2**self.t)
        xp = get_array_module(self._m_flat)
        grads = self._prepared_grads()
        g = xp.concatenate([grads[name].reshape(-1) for name in self._slices])  # (P,) every gradient, a copy
        m, v = self._m_flat, self._v_flat
        m *= b1
        m += (1 - b1) * g
        v *= b2
        g *= g  # g^2, in the copy
        v += (1 - b2) * g
        del g  # freed before the update's two (P,) arrays exist
        update = step_size * m  # (P,)
        denominator = xp.sqrt(v)
        denominator += eps_hat
        update /= denominator  # step_size * m / (sqrt(v) + eps_hat)
        for name, p in self.params.items():
            p -= update[self._slices[name]].reshape(p.shape)

    def state(self):
        out = {f"m.{k}": a for k, a in self.m.items()}
        out.update({f"v.{k}": a for k, a in self.v.items()})
        out["t"] = get_array_module(next(iter(self.m.values()))).asarray(self.t)
        return out

    def load_state(self, state):
        for k in self.m:
            self.m[k][...] = state[f"m.{k}"]
            self.v[k][...] = state[f"v.{k}"]
        self.t = int(state["t"])


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019, arXiv:1711.05101).

    Each step first shrinks every parameter, theta -= lr_t * weight_decay * theta,
    then takes Adam's step on the gradient alone. Adam with coupled L2
    divides the decay term by sqrt(v) like the gradient, so parameters with
    large gradients are barely decayed; here every parameter shrinks at the
    same rate. Arguments as ``Adam``; ``weight_decay`` is the decoupled
    coefficient (typical values 1e-4 to 0.1).
    """

    def _prepared_grads(self):
        """Clip the global gradient norm; the decay is not added to the gradient."""
        if self.clip_norm is not None:
            clip_grad_norm(self.grads, self.clip_norm)
        return self.grads

    def step(self):
        if self.weight_decay:
            shrink = 1.0 - self.current_lr(self.t + 1) * self.weight_decay  # the coming step's learning rate
            for p in self.params.values():
                p *= shrink
        super().step()
