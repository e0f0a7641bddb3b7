"""The training loop: one function, a progress bar, a loss history.

Each step: zero the gradients, compute the loss and its gradient by one
backward pass (``loss_and_backward``), let the optimizer update the
parameters. The loss is read back to the host only every ``log_every``
steps (a GPU would otherwise wait on every step); a non-finite loss there
stops training with a clear message.
"""

import time

from .backend import make_rng
from .optim import Adam

__all__ = ["fit", "fit_samples", "TrainingDiverged", "progress_bar"]


class TrainingDiverged(RuntimeError):
    """Raised when the loss becomes NaN or infinite during training."""


def progress_bar(total, desc, enabled=True):
    """A tqdm progress bar that works in a terminal and in Jupyter (tqdm.auto)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, mininterval=0.5)


def fit(model, loss_and_backward, n_steps, optimizer, log_every=25, progress=True, desc="training", callback=None):
    """Train ``model`` for ``n_steps`` steps.

    Args:
        model: a FlowModel (anything with ``zero_grads``).
        loss_and_backward: ``f(step) -> loss`` that runs the forward and the
            backward pass for one batch (gradients accumulate in ``model.grads``).
        n_steps: number of optimizer steps, a positive integer.
        optimizer: e.g. ``Adam(model.params, model.grads, lr=1e-3)``.
        log_every: read the loss back every this many steps (and at the end).
        progress: show a progress bar with the live loss.
        callback: optional ``f(step, loss)`` called at each logged step.

    Returns:
        history: dict with "step" (list of ints), "loss" (list of floats),
        "seconds" (wall time of the whole loop).
    """
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer; got {n_steps!r}.")
    history = {"step": [], "loss": [], "seconds": 0.0}
    start = time.perf_counter()
    with progress_bar(int(n_steps), desc, progress) as bar:
        for step in range(int(n_steps)):
            model.zero_grads()
            loss = loss_and_backward(step)
            last = step == n_steps - 1
            if step % log_every == 0 or last:
                value = float(loss)  # the one host transfer per log step
                if value != value or value in (float("inf"), float("-inf")):
                    raise TrainingDiverged(
                        f"The loss became {value} at step {step}. Try a lower learning rate "
                        "or gradient clipping (clip_norm); the parameters of the last step are kept."
                    )
                history["step"].append(step)
                history["loss"].append(value)
                bar.set_postfix(loss=f"{value:.4f}")
                if callback is not None:
                    callback(step, value)
            optimizer.step()
            bar.update(1)
    history["seconds"] = time.perf_counter() - start
    return history


def fit_samples(model, sample, n_steps, batch_size=512, lr=1e-3, seed=0, optimizer=None, **kwargs):
    """Maximum likelihood on fresh samples each step (the R2 recipe).

    Args:
        model: a FlowModel.
        sample: ``f(n, rng) -> (n, D)`` array of exact samples of the data.
        n_steps, batch_size, lr: the recipe (R2: 5,000, 512, 1e-3).
        seed: seeds the data stream, so a run is reproducible.
        optimizer: default Adam(lr).
        kwargs: passed to ``fit`` (log_every, progress, desc, callback).

    Returns:
        the history of ``fit``.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    rng = make_rng(seed)
    optimizer = optimizer or Adam(model.params, model.grads, lr=lr)
    dtype = model._param_dtype()

    def loss_and_backward(step):
        x = sample(int(batch_size), rng).astype(dtype, copy=False)
        return model.nll_and_backward(x)

    return fit(model, loss_and_backward, n_steps, optimizer, **kwargs)
