"""Continuous flows along t: a ``ContinuousFlowModel`` carrying noise (t = 0) to data (t = 1).

The pictures that ``warping`` and ``animation`` draw for a stack of layers,
drawn for the ODE dx/dt = v(x, t): panels at a few times, and a GIF with one
frame per solver step.
"""

import os

import matplotlib
import numpy
from matplotlib.collections import LineCollection
from matplotlib.patches import Rectangle

from ..backend import make_rng, to_device, to_numpy
from .style import (
    _GRID_COLOR,
    STYLE,
    _clean_panel,
    _finish,
    _model_module,
    _new_figure,
    _point_colours,
    _square_limits,
)
from .warping import _draw_panel, _grid_lines, _latent_panel_box

__all__ = ["animate_ode_warping", "plot_ode_warping"]


def _ode_states(model, z, lines, times, n_steps=None):
    """Points (P, 2) and grid lines (M, V, 2) moved by the model's ODE from t = 0 to each of ``times`` (host)."""
    xp, dtype = _model_module(model)
    n_points = z.shape[0]
    batch = to_device(numpy.concatenate([z, lines.reshape(-1, 2)]), xp, dtype)  # (P + M*V, 2)
    states = [to_numpy(s).astype(numpy.float64) for s in model.transport(batch, times, n_steps=n_steps)]
    return [s[:n_points] for s in states], [s[n_points:].reshape(lines.shape) for s in states]


def plot_ode_warping(model, toy, path=None, n_panels=5, n_points=1500, n_lines=11, seed=0, latent_box=(-3.0, 3.0)):
    """A continuous flow at a few times: base samples and a grid carried from t = 0 (noise) to t = 1 (data).

    The figure for a ``ContinuousFlowModel`` that ``plot_warping`` draws
    for a stack of layers: panels at t = 0, 1/(n_panels - 1), ..., 1 along
    the ODE dx/dt = v(x, t) (solved with the model's solver, its n_steps
    rounded up to a multiple of n_panels - 1), points coloured by their x
    coordinate at t = 1.

    Args:
        model: a ContinuousFlowModel on 2D data; toy: a ToyDensity (its box).
        path: save the figure there as PNG if given.
        n_panels: at least 2.
        n_points, n_lines: points and grid lines per direction.
        seed: the points are drawn from ``make_rng(seed)`` on the model's module.
        latent_box: the grid at t = 0.
    """
    if int(n_panels) != n_panels or n_panels < 2:
        raise ValueError(f"n_panels must be an integer >= 2; got {n_panels!r}.")
    xp, _ = _model_module(model)
    rng = make_rng(seed, xp)
    times = [k / (n_panels - 1) for k in range(n_panels)]
    n_steps = (n_panels - 1) * -(-model.n_steps // (n_panels - 1))  # so every panel's t is on the solver's grid
    z = to_numpy(model.base.sample(n_points, rng, numpy.float64))  # (P, 2)
    points, lines = _ode_states(model, z, _grid_lines(latent_box, n_lines), times, n_steps)
    colours = _point_colours(points[-1][:, 0], toy.box)
    with matplotlib.rc_context(STYLE):
        fig = _new_figure(2.6 * n_panels, 3.2)
        axes = fig.subplots(1, n_panels, squeeze=False)[0]
        for ax, t, pts, lns in zip(axes, times, points, lines):
            limits = _latent_panel_box(latent_box) if t == 0 else _square_limits(pts)
            _draw_panel(ax, pts, lns, colours, f"t = {t:.2f}", limits)
        fig.suptitle(f"{toy.name}: noise (t = 0) to data (t = 1) along dx/dt = v(x, t)")
        fig.subplots_adjust(wspace=0.08, left=0.02, right=0.98, top=0.78, bottom=0.02)
    return _finish(fig, path)


def animate_ode_warping(
    model, toy, path, hold=14, fps=16, n_points=1000, n_lines=11, seed=0, dpi=80, latent_box=(-3.0, 3.0), title=None
):
    """A GIF of a continuous flow carrying the Gaussian to the data along t, and back.

    One frame per solver step of the model (``model.n_steps`` RK4 steps from
    t = 0 to 1): base samples and a grid move along dx/dt = v(x, t) to the
    data, pause, and run back in time to the Gaussian; it loops. Unlike a
    stack of layers (``animate_warping``) there is nothing to interpolate:
    every frame is a point of the ODE's solution. A bar at the bottom shows t.

    Args:
        model: a ContinuousFlowModel on 2D data; toy: a ToyDensity (title, colours).
        path: where to write the GIF (folders are created).
        hold: frames paused at t = 0 and at t = 1. fps: frames per second.
        n_points, n_lines: points and grid lines per direction.
        seed: the points are drawn from ``make_rng(seed)`` on the model's module.
        dpi: resolution; the frame is 5.4 x 6 inches.
        latent_box: the starting grid at t = 0.
        title: the line above the panel.

    Returns:
        the number of frames written: 2 * (hold + n_steps).
    """
    from matplotlib.animation import PillowWriter

    for name, value in [("hold", hold), ("fps", fps), ("n_points", n_points)]:
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    xp, _ = _model_module(model)
    rng = make_rng(seed, xp)
    n_steps = model.n_steps
    times = [k / n_steps for k in range(n_steps + 1)]
    z = to_numpy(model.base.sample(int(n_points), rng, numpy.float64))  # (P, 2)
    points, lines = _ode_states(model, z, _grid_lines(latent_box, n_lines), times)
    colours = _point_colours(points[-1][:, 0], toy.box)
    limits = _square_limits(numpy.concatenate(points), pad=0.05, quantile=0.3)
    # one entry per frame: (k, caption), the state at t = k / n_steps
    timeline = (
        [(0, "noise")] * int(hold)
        + [(k, "noise → data") for k in range(1, n_steps + 1)]
        + [(n_steps, "data")] * int(hold)
        + [(k, "data → noise") for k in range(n_steps - 1, -1, -1)]
    )
    with matplotlib.rc_context(STYLE):
        fig = _new_figure(5.4, 6.0)
        ax = fig.add_axes([0.04, 0.2, 0.92, 0.68])
        grid = LineCollection(lines[0], colors=_GRID_COLOR, linewidths=0.7, alpha=0.55, zorder=1)
        ax.add_collection(grid)
        cloud = ax.scatter(points[0][:, 0], points[0][:, 1], s=7, c=colours, linewidths=0, zorder=2)
        _clean_panel(ax, limits)
        caption = ax.set_title("", fontsize=17, pad=10)
        fig.suptitle(title or f"{toy.name}: flow matching, noise to data", fontsize=15, y=0.975)
        bar = fig.add_axes([0.08, 0.1, 0.84, 0.03])
        bar.set_xlim(0, 1)
        bar.set_ylim(0, 1)
        bar.set_yticks([])
        bar.set_xticks([0, 0.5, 1])
        bar.set_title("t   (0: noise, 1: data)", fontsize=12, pad=4)
        bar.add_patch(Rectangle((0, 0), 1, 1, facecolor="0.93", edgecolor="none"))
        done = Rectangle((0, 0), 0, 1, facecolor="#b5367a", edgecolor="none")
        bar.add_patch(done)
        progress = fig.add_axes([0.08, 0.02, 0.84, 0.01])
        progress.set_axis_off()
        progress.set_xlim(0, 1)
        progress.set_ylim(0, 1)
        elapsed = Rectangle((0, 0), 0, 1, facecolor="0.55", edgecolor="none")
        progress.add_patch(elapsed)
        writer = PillowWriter(fps=int(fps))
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with writer.saving(fig, path, dpi):
            for i, (k, text) in enumerate(timeline):
                cloud.set_offsets(points[k])
                grid.set_segments(lines[k])
                caption.set_text(f"t = {times[k]:.2f}   {text}")
                done.set_width(times[k])
                elapsed.set_width((i + 1) / len(timeline))  # every frame differs, so the GIF merges none
                writer.grab_frame()
    return len(timeline)
