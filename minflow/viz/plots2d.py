"""2D plots of a flow model: its density on a grid beside the truth, its samples, the training loss."""

import matplotlib
import numpy

from ..backend import make_rng, to_device, to_numpy
from .style import (
    _EVAL_BATCH,
    _SAMPLE_COLOR,
    DENSITY_CMAP,
    STYLE,
    _as_box,
    _clean_panel,
    _finish,
    _finite_max,
    _model_module,
    _new_figure,
)

__all__ = ["density_grid", "plot_density_comparison", "plot_loss", "plot_samples"]


def density_grid(log_prob_fn, box, n=200, batch_size=_EVAL_BATCH, xp=None, dtype=numpy.float64):
    """Evaluate a log-density at the centres of an n x n grid of cells covering ``box``.

    Args:
        log_prob_fn: ``f(x) -> (N,)`` log-density, e.g. ``model.log_prob`` or
            ``toy.log_prob``.
        box: (lo, hi) for the square [lo, hi]^2, or ((x0, x1), (y0, y1)).
        n: cells per side.
        batch_size: points per call of ``log_prob_fn`` (bounds memory).
        xp, dtype: where and in which dtype the points are made (default:
            NumPy float64); use the model's module for a model on a GPU.

    Returns:
        X, Y, log_density: host arrays of shape (n, n); row i is y = Y[i, 0].
        Cells are centred on the points, so the midpoint rule
        ``exp(log_density).sum() * cell_area`` approximates the integral over
        ``box`` (cell_area = (X[0, 1] - X[0, 0]) * (Y[1, 0] - Y[0, 0])).
    """
    if int(n) != n or n < 2:
        raise ValueError(f"n must be an integer >= 2 (cells per side); got {n!r}.")
    (x0, x1), (y0, y1) = _as_box(box)
    n = int(n)
    xs = x0 + (numpy.arange(n) + 0.5) * (x1 - x0) / n  # (n,) cell centres
    ys = y0 + (numpy.arange(n) + 0.5) * (y1 - y0) / n  # (n,)
    X, Y = numpy.meshgrid(xs, ys)  # (n, n) each
    points = numpy.stack([X.ravel(), Y.ravel()], axis=1)  # (n*n, 2)
    out = []
    for start in range(0, points.shape[0], batch_size):
        chunk = to_device(points[start : start + batch_size], xp or numpy, dtype)  # (B, 2)
        out.append(to_numpy(log_prob_fn(chunk)).astype(numpy.float64))  # (B,)
    return X, Y, numpy.concatenate(out).reshape(n, n)


def _model_log_density(model, box, n):
    xp, dtype = _model_module(model)
    return density_grid(model.log_prob, box, n, xp=xp, dtype=dtype)


def plot_density_comparison(model, toy, path=None, gap=None, n=200, n_hist=200_000, seed=0):
    """Model density beside the true density, on one colour scale.

    Args:
        model: a trained FlowModel on 2D data.
        toy: a ToyDensity (``get_toy(name)``). Sample-only toys (pinwheel,
            spirals) have no exact density: the right panel is then a
            normalised histogram of ``n_hist`` samples (seeded by ``seed``).
        path: save the figure there as PNG if given.
        gap: NLL - H in nats; shown in the title if given.
        n: grid cells per side.

    Returns:
        the Figure: two heatmaps of the densities q(x) and p(x) over
        ``toy.box``, colour scale from 0 to the larger maximum, one colour bar.
    """
    box = _as_box(toy.box)
    (x0, x1), (y0, y1) = box
    _, _, log_q = _model_log_density(model, box, n)
    q = numpy.exp(log_q)  # (n, n)
    if toy.has_log_prob:
        _, _, log_p = density_grid(toy.log_prob, box, n)
        p = numpy.exp(log_p)  # (n, n)
        truth_title = "true density p(x)"
    else:
        x = to_numpy(toy.sample(n_hist, make_rng(seed, numpy), numpy.float64))
        p, _, _ = numpy.histogram2d(x[:, 1], x[:, 0], bins=n, range=[[y0, y1], [x0, x1]], density=True)
        truth_title = "data histogram"
    vmax = max(_finite_max(q), _finite_max(p))
    with matplotlib.rc_context(STYLE):
        fig = _new_figure(11.5, 5.4)
        axes = fig.subplots(1, 2)
        for ax, dens, title in [(axes[0], q, "model density q(x)"), (axes[1], p, truth_title)]:
            image = ax.imshow(
                dens,
                origin="lower",
                extent=(x0, x1, y0, y1),
                cmap=DENSITY_CMAP,
                vmin=0.0,
                vmax=vmax,
                interpolation="bilinear",
            )
            ax.set_title(title)
            _clean_panel(ax, box, ticks=True)
        bar = fig.colorbar(image, ax=list(axes), fraction=0.035, pad=0.03)
        bar.set_label("density")
        title = f"{toy.name}: model vs truth"
        if gap is not None:
            title += f"    (test NLL − H = {gap:.3f} nats)"
        fig.suptitle(title, y=0.98)
    return _finish(fig, path)


def plot_samples(model, toy, n=2000, seed=0, path=None):
    """Model samples beside exact data samples, on the same axes.

    Args:
        model: a FlowModel on 2D data. toy: a ToyDensity.
        n: points per panel.
        seed: the points are drawn from ``make_rng(seed)`` on the model's array module;
            it draws the model's samples, then the data's.
        path: save the figure there as PNG if given.
    """
    xp, dtype = _model_module(model)
    rng = make_rng(seed, xp)
    model_x = to_numpy(model.sample(n, rng))  # (n, 2)
    data_x = to_numpy(toy.sample(n, rng, dtype))  # (n, 2)
    box = _as_box(toy.box)
    with matplotlib.rc_context(STYLE):
        fig = _new_figure(10.5, 5.4)
        axes = fig.subplots(1, 2)
        for ax, x, title in [(axes[0], model_x, "model samples"), (axes[1], data_x, "data samples")]:
            ax.scatter(x[:, 0], x[:, 1], s=4, color=_SAMPLE_COLOR, alpha=0.6, linewidths=0, rasterized=True)
            ax.set_title(title)
            _clean_panel(ax, box, ticks=True)
        fig.suptitle(f"{toy.name}: {n:,} samples each", y=0.98)
    return _finish(fig, path)


def plot_loss(history, path=None, entropy=None, smooth=None, label="batch NLL", ylabel="NLL (nats)"):
    """The training loss (mean NLL per batch, nats) against the step.

    Args:
        history: the dict returned by ``train.fit`` ({"step": [...], "loss": [...]}).
        path: save the figure there as PNG if given.
        entropy: H(p) in nats, drawn as the lower bound of the expected NLL.
        smooth: moving-average window in logged points (default ~1/25 of them).
        label, ylabel: what the loss is (e.g. "batch flow matching loss", for a loss that is not an NLL).
    """
    steps = numpy.asarray(history["step"], dtype=numpy.float64)
    loss = numpy.asarray(history["loss"], dtype=numpy.float64)
    if steps.size == 0:
        raise ValueError("history has no logged steps; train for at least one step first.")
    window = smooth or max(1, steps.size // 25)
    with matplotlib.rc_context(STYLE):
        fig = _new_figure(8.0, 4.8)
        ax = fig.subplots()
        ax.plot(steps, loss, color=_SAMPLE_COLOR, alpha=0.3, linewidth=1.0, label=label)
        if window > 1 and steps.size > window:
            kernel = numpy.ones(window) / window
            smoothed = numpy.convolve(loss, kernel, mode="valid")  # (S - window + 1,)
            ax.plot(steps[window - 1 :], smoothed, color=_SAMPLE_COLOR, label="moving average")
        if entropy is not None:
            ax.axhline(entropy, color="#b5367a", linestyle="--", linewidth=1.8, label=f"entropy H(p) = {entropy:.3f}")
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.set_title("training loss")
        ax.grid(alpha=0.25)
        # Start the y axis near the bottom of the curve: the first steps are far above.
        top = numpy.percentile(loss, 99) if loss.size > 20 else loss.max()
        bottom = min(loss.min(), entropy if entropy is not None else loss.min())
        span = max(top - bottom, 1e-3)
        ax.set_ylim(bottom - 0.05 * span, top + 0.05 * span)
        ax.legend(frameon=False)
    return _finish(fig, path)
