"""An exponential moving average (EMA) of the parameters, for evaluation and sampling.

After optimizer step n the running sum moves towards the parameters theta_n,

    s_n = d * s_(n-1) + (1 - d) * theta_n,     s_0 = 0          (d = decay, e.g. 0.999)
    theta_bar_n = s_n / (1 - d^n)                               (weights sum to 1)

so theta_bar averages the iterates with weights falling by d per step,
roughly the last 1 / (1 - d) steps. Dividing by 1 - d^n (as Adam corrects
its moments) keeps early averages from leaning on the zero start. Stochastic
gradient steps leave the weights rattling around a minimum; their average
sits nearer its middle and often evaluates better than the last iterate
(Polyak & Juditsky 1992; used for most image generative models since).
Training never sees theta_bar: the optimizer keeps updating theta, and
``averaged()`` puts theta_bar into the model only while it is evaluated.

``EMA`` wraps the optimizer, so the training loop, its divergence guard and
checkpoints treat the pair as one optimizer: ``step()`` steps the optimizer
then the average, ``state()`` holds both.
"""

from contextlib import contextmanager

from .backend import get_array_module

__all__ = ["EMA"]


class EMA:
    """An optimizer whose steps also move an exponential moving average of the parameters.

    Args:
        optimizer: e.g. ``Adam(model.params, model.grads)``; its ``params`` are averaged.
        decay: d in [0, 1).

    Attributes:
        sums: dict name -> array, s_n, the shapes of ``optimizer.params``.
        n: steps averaged.
    """

    def __init__(self, optimizer, decay=0.999):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1) (e.g. 0.999); got {decay!r}.")
        if not hasattr(optimizer, "params") or not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"EMA wraps an optimizer (e.g. Adam(model.params, model.grads)); got {optimizer!r}.")
        self.optimizer, self.decay = optimizer, decay
        self.params = optimizer.params
        self.sums = {k: p * 0 for k, p in self.params.items()}  # zeros of each parameter's shape, dtype, device
        self.n = 0

    @property
    def lr(self):
        return self.optimizer.lr

    @property
    def t(self):
        return self.optimizer.t

    def step(self):
        """One optimizer step, then s <- d s + (1 - d) theta (in place)."""
        self.optimizer.step()
        self.n += 1
        for name, p in self.params.items():
            s = self.sums[name]
            s *= self.decay
            s += (1.0 - self.decay) * p

    def average(self):
        """dict name -> theta_bar = s_n / (1 - d^n), new arrays (the parameters themselves before any step)."""
        if self.n == 0:
            return {k: p.copy() for k, p in self.params.items()}
        return {k: s / (1.0 - self.decay**self.n) for k, s in self.sums.items()}

    @contextmanager
    def averaged(self):
        """Inside the block the parameters hold theta_bar; on leaving they hold theta again."""
        trained = {k: p.copy() for k, p in self.params.items()}
        for name, a in self.average().items():
            self.params[name][...] = a  # in place: every layer reads the same arrays
        try:
            yield
        finally:
            for name, p in self.params.items():
                p[...] = trained[name]

    def state(self):
        """The optimizer's state, ``ema.<name>`` for each sum and ``ema_n`` (for checkpoints)."""
        out = dict(self.optimizer.state())
        out.update({f"ema.{k}": s for k, s in self.sums.items()})
        out["ema_n"] = get_array_module(out[f"ema.{next(iter(self.sums))}"]).asarray(self.n)
        return out

    def load_state(self, state):
        self.optimizer.load_state({k: v for k, v in state.items() if not k.startswith("ema")})
        for name, s in self.sums.items():
            s[...] = state[f"ema.{name}"]
        self.n = int(state["ema_n"])
