"""The training loop: one function, a progress bar, a loss history.

Each step: zero the gradients, compute the loss and its gradient by one
backward pass (``loss_and_backward``), let the optimizer update the
parameters. The loss is read back to the host only every ``log_every``
steps (a GPU would otherwise wait on every step).

``fit_epochs`` runs epochs of maximum likelihood on integer images
(dequantised afresh in every batch), each followed by an evaluation in
bits per dimension, and keeps the history a command can save and resume.

The guard against divergence works at those checks too. A good check (finite
loss, finite gradients) keeps a copy of the parameters, buffers and
optimizer state. A bad one restores that copy, re-runs the failing batch
layer by layer (``minflow.diagnostics``) to name the first layer whose
output or gradient went non-finite, optionally writes the restored state to
a checkpoint, and raises ``TrainingDiverged`` with all of it in the message.
"""

import math
import time

from .backend import get_array_module, make_rng, to_device
from .checks import check_positive_int
from .diagnostics import diagnose_last_batch
from .flows.preprocessing import dequantize
from .metrics import bits_per_dim
from .optim import Adam
from .threads import with_thread_policy

__all__ = ["TrainingDiverged", "fit", "fit_epochs", "fit_samples", "new_epoch_history", "progress_bar", "train_epoch"]


class TrainingDiverged(RuntimeError):
    """Raised when the loss or a gradient becomes NaN or infinite during training.

    Attributes:
        step: the step whose loss or gradient was non-finite.
        last_good_step: the step whose parameters were restored (the last
            check with a finite loss and gradients), or None if there was none.
        diagnosis: a ``diagnostics.Diagnosis`` naming the first non-finite
            layer, or None where the batch could not be re-run.
        checkpoint_path: where the restored state was saved, or None.
    """

    def __init__(self, message, step=None, last_good_step=None, diagnosis=None, checkpoint_path=None):
        super().__init__(message)
        self.step = step
        self.last_good_step = last_good_step
        self.diagnosis = diagnosis
        self.checkpoint_path = checkpoint_path


class _Snapshot:
    """Copies of the parameters, buffers and optimizer state at a good check (one device copy each)."""

    def __init__(self, model, optimizer, step):
        self.step = step
        self.params = {k: p.copy() for k, p in model.params.items()}
        self.buffers = {k: b.copy() for k, b in model.buffers().items()}
        try:
            self.optim = {k: v.copy() for k, v in optimizer.state().items()}
        except (AttributeError, NotImplementedError):  # an optimizer without state(): parameters only
            self.optim = None

    def restore(self, model, optimizer):
        for k, p in model.params.items():
            p[...] = self.params[k]
        for k, b in self.buffers.items():
            model.set_buffer(k, b.copy())
        if self.optim is not None:
            optimizer.load_state(self.optim)


def _grads_finite(grads):
    """True if every gradient is finite: one reduction per array, one read-back in all."""
    if not grads:
        return True
    xp = get_array_module(next(iter(grads.values())))
    return bool(xp.stack([xp.isfinite(g).all() for g in grads.values()]).all())


def _diverged(model, optimizer, step, what, snapshot, checkpoint_path, on_diverge):
    """Diagnose, restore the last good state, save it if asked, call on_diverge: the TrainingDiverged to raise."""
    try:
        diagnosis = diagnose_last_batch(model)
    except Exception as err:  # noqa: BLE001 (a diagnosis that fails must not hide the divergence)
        diagnosis, where = None, f" (re-running the batch layer by layer failed: {type(err).__name__}: {err})"
    else:
        where = (
            f" Re-running that batch layer by layer: {diagnosis}."
            if diagnosis is not None
            else " (No batch to re-run: the loss does not go through FlowModel.nll_and_backward or "
            "reverse_kl_and_backward, so no layer can be named.)"
        )
    if snapshot is not None:
        snapshot.restore(model, optimizer)
        kept = f" The parameters of step {snapshot.step}, the last check with a finite loss and gradients, are restored"
        if step - snapshot.step > 1:
            kept += f" (the values went bad between steps {snapshot.step + 1} and {step}; log_every=1 pins the step)"
    else:
        kept = " The parameters are those of the start of this step (no earlier check)"
    saved = None
    if checkpoint_path is not None:
        from .checkpoint import save_checkpoint

        extra = {"step": snapshot.step if snapshot else step, "diverged_at": step}
        try:
            save_checkpoint(checkpoint_path, model, optimizer, extra=extra)
            saved, kept = checkpoint_path, kept + f" and saved to {checkpoint_path}"
        except Exception as err:  # noqa: BLE001 (report it; the divergence is the error to raise)
            kept += f"; saving them to {checkpoint_path} failed ({type(err).__name__}: {err})"
    lr = getattr(optimizer, "lr", None)
    advice = (
        "Clean the data: the batch itself holds NaN or infinite values."
        if diagnosis is not None and diagnosis.stage == "batch"
        else "Try a lower learning rate"
        + (f" (now {lr:g}; e.g. {lr / 10:g})" if isinstance(lr, float) else "")
        + " or gradient clipping (e.g. Adam(..., clip_norm=10.0))."
    )
    message = f"Training diverged at step {step}: {what}.{where}{kept}. {advice}"
    error = TrainingDiverged(
        message,
        step=step,
        last_good_step=snapshot.step if snapshot else None,
        diagnosis=diagnosis,
        checkpoint_path=saved,
    )
    if on_diverge is not None:
        on_diverge(error)
    return error


def progress_bar(total, desc, enabled=True):
    """A tqdm progress bar that works in a terminal and in Jupyter (tqdm.auto)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, mininterval=0.5)


@with_thread_policy
def fit(
    model,
    loss_and_backward,
    n_steps,
    optimizer,
    log_every=25,
    progress=True,
    desc="training",
    callback=None,
    checkpoint_path=None,
    on_diverge=None,
):
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
        checkpoint_path: if given and training diverges, the restored last
            good state (parameters, buffers, optimizer) is written there with
            ``checkpoint.save_checkpoint`` (atomically) before raising.
        on_diverge: optional ``f(error)`` called with the ``TrainingDiverged``
            error after the last good state is restored, before it is raised.

    The loop runs on ``threads.threads()`` BLAS threads (one unless
    ``minflow.set_threads`` or ``MINFLOW_THREADS`` says otherwise); the
    previous setting is restored on return.

    Returns:
        history: dict with "step" (list of ints), "loss" (list of floats),
        "seconds" (wall time of the whole loop).

    Raises:
        TrainingDiverged: at a check (every ``log_every`` steps and the last
            step), the loss or a gradient is NaN or infinite, or at any step a
            layer raised ``FloatingPointError`` (e.g. a singular matrix). The parameters,
            buffers and optimizer state of the last good check are restored
            first; the message names the step, the first non-finite layer
            and what to try.
    """
    n_steps = check_positive_int(n_steps, "n_steps")
    log_every = check_positive_int(log_every, "log_every")
    if not callable(loss_and_backward):
        raise TypeError(
            f"loss_and_backward must be a function f(step) -> loss; got {type(loss_and_backward).__name__}."
        )
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(
            f"optimizer must have a step() method (e.g. Adam(model.params, model.grads)); got {type(optimizer).__name__}."
        )
    if hasattr(model, "last_batch"):
        model.last_batch = None  # never diagnose a batch from before this run
    history = {"step": [], "loss": [], "seconds": 0.0}
    snapshot = None  # the last good check's state
    start = time.perf_counter()
    with progress_bar(n_steps, desc, progress) as bar:
        for step in range(n_steps):
            model.zero_grads()
            try:
                loss = loss_and_backward(step)
            except FloatingPointError as err:  # a layer could not go on, e.g. a singular matrix
                what = f"the step raised {type(err).__name__}: {err}"
                raise _diverged(model, optimizer, step, what, snapshot, checkpoint_path, on_diverge) from err
            last = step == n_steps - 1
            if step % log_every == 0 or last:
                value = float(loss)  # host transfers: the loss and one flag for all gradients
                if not math.isfinite(value):
                    what = f"the loss is {value}"
                elif not _grads_finite(model.grads):
                    what = f"the loss is finite ({value:.6g}) but a gradient is NaN or infinite"
                else:
                    what = None
                if what is not None:
                    raise _diverged(model, optimizer, step, what, snapshot, checkpoint_path, on_diverge)
                snapshot = _Snapshot(model, optimizer, step)
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
    batch_size = check_positive_int(batch_size, "batch_size")
    if not callable(sample):
        raise TypeError(f"sample must be a function f(n, rng) -> (n, D) array; got {type(sample).__name__}.")
    rng = make_rng(seed)
    optimizer = optimizer or Adam(model.params, model.grads, lr=lr)
    dtype = model.dtype

    def loss_and_backward(step):
        x = sample(batch_size, rng)
        if step == 0:  # check the data once, in full; later batches only by the divergence guard
            model.check_data(x, name="sample(batch_size, rng)")
        return model.nll_and_backward(x.astype(dtype, copy=False))

    return fit(model, loss_and_backward, n_steps, optimizer, **kwargs)


# -- epochs over a set of images ---------------------------------------------------------


def train_epoch(model, optimizer, images, rng, batch_size, n_levels, desc=None, progress=True, augment=None):
    """One epoch of maximum likelihood on integer images, in shuffled batches.

    Each batch (the last, partial one kept) is dequantised with fresh noise,
    v = (x + u) / k (``flows.preprocessing.dequantize``), and takes one
    optimizer step through ``fit``.

    Args:
        model: a FlowModel over v in [0, 1)^(C, H, W). optimizer: over its params.
        images: integer array (N, C, H, W), values 0 .. n_levels - 1 (host).
        rng: host generator for the shuffle and the noise.
        batch_size: images per step. n_levels: k.
        desc, progress: the progress bar.
        augment: ``augment(v, rng) -> v`` applied to each dequantised batch
            (host arrays, same shape), e.g. ``zoo.tarflow.LogitNoise``; None: none.

    Returns:
        (the epoch's mean training loss in bits per dimension, seconds of the training loop, steps).
    """
    xp, dtype = model.xp, model.dtype
    perm = rng.permutation(len(images))
    batches = [perm[i : i + batch_size] for i in range(0, len(images), batch_size)]  # last partial batch kept
    total = [0.0]  # sum over images of -log q(v), kept on the device

    def loss_and_backward(step):
        idx = batches[step]
        v, _ = dequantize(images[idx], n_levels, rng, dtype)  # fresh noise for every batch, (B, C, H, W)
        if augment is not None:
            v = augment(v, rng)
        loss = model.nll_and_backward(to_device(v, xp))
        total[0] = total[0] + loss * len(idx)
        return loss

    history = fit(
        model, loss_and_backward, len(batches), optimizer, log_every=len(batches), progress=progress, desc=desc
    )
    d = math.prod(images.shape[1:])
    return float(bits_per_dim(-float(total[0]) / len(images), d, n_levels)), history["seconds"], len(batches)


def new_epoch_history():
    """(history, state) of a run of ``fit_epochs`` before its first epoch (JSON-able, for checkpoints)."""
    history = {"train_bpd": [], "test_bpd": [], "test_iw_bpd": [], "val_bpd": []}
    state = {"epoch": 0, "best_epoch": None, "best_val_bpd": None, "train_seconds": 0.0, "steps": 0, "seconds": 0.0}
    return history, state


def fit_epochs(
    model,
    optimizer,
    images,
    epochs,
    rng,
    batch_size,
    n_levels,
    evaluate,
    test_images,
    val_images=None,
    history=None,
    state=None,
    on_epoch=None,
    progress=True,
    augment=None,
):
    """Epochs ``state["epoch"] + 1 .. epochs`` of ``train_epoch``, each followed by an evaluation.

    Args:
        model, optimizer, images, rng, batch_size, n_levels: as ``train_epoch``.
        epochs: the last epoch to run (a resumed run continues after ``state["epoch"]``).
        evaluate: ``evaluate(images) -> {"bpd": ..., "iw_bpd": ...}`` (e.g. ``zoo.d8.evaluate_bpd``
            with its settings bound), run on ``test_images`` and ``val_images`` after every epoch.
        val_images: held-out images whose best epoch is tracked, or None.
        history, state: from ``new_epoch_history()`` or a checkpoint; updated in place.
        on_epoch: ``on_epoch(epoch, line, improved)`` after every epoch, for output,
            checkpoints and the best model: ``line`` the epoch's summary, ``improved``
            True when the validation bpd is the best so far.
        progress: show a progress bar per epoch.
        augment: passed to ``train_epoch`` (training batches only; evaluation sees clean data).

    Returns:
        (history, state): per-epoch lists "train_bpd", "test_bpd", "test_iw_bpd",
        "val_bpd"; "epoch", "best_epoch", "best_val_bpd", "train_seconds", "steps",
        "seconds".
    """
    if history is None or state is None:
        history, state = new_epoch_history()
    start = time.perf_counter() - state["seconds"]
    for epoch in range(state["epoch"] + 1, epochs + 1):
        desc = f"epoch {epoch}/{epochs}"
        train_bpd, seconds, steps = train_epoch(
            model, optimizer, images, rng, batch_size, n_levels, desc, progress, augment
        )
        test = evaluate(test_images)
        history["train_bpd"].append(train_bpd)
        history["test_bpd"].append(test["bpd"])
        history["test_iw_bpd"].append(test["iw_bpd"])
        line = f"epoch {epoch}: train {train_bpd:.4f}  test {test['bpd']:.4f} bpd"
        improved = False
        if val_images is not None:
            val_bpd = evaluate(val_images)["bpd"]
            history["val_bpd"].append(val_bpd)
            line += f"  val {val_bpd:.4f}"
            if state["best_val_bpd"] is None or val_bpd < state["best_val_bpd"]:
                state["best_epoch"], state["best_val_bpd"] = epoch, val_bpd
                improved = True
        state.update(
            epoch=epoch,
            train_seconds=state["train_seconds"] + seconds,
            steps=state["steps"] + steps,
            seconds=time.perf_counter() - start,
        )
        if on_epoch is not None:
            on_epoch(epoch, line, improved)
    return history, state
