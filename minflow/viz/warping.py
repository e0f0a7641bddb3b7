"""The flow warping space, layer by layer: grid lines and points pushed through every layer, in one figure.

``warp_states`` is shared with the animation (``viz.animation``): the
points and grid lines before any layer and after each one.
"""

import matplotlib
import numpy
from matplotlib.collections import LineCollection

from ..backend import make_rng, to_device, to_numpy
from .style import (
    _GRID_COLOR,
    STYLE,
    _as_box,
    _clean_panel,
    _finish,
    _model_module,
    _new_figure,
    _point_colours,
    _square_limits,
)

__all__ = ["plot_warping"]


def _grid_lines(box, n_lines=11, n_vertices=120):
    """Straight lines of a square grid over ``box``: (2 * n_lines, n_vertices, 2).

    Vertical lines first, then horizontal ones; pushing them through a flow
    shows how it bends space.
    """
    (x0, x1), (y0, y1) = _as_box(box)
    along_x = numpy.linspace(x0, x1, n_vertices)  # (V,)
    along_y = numpy.linspace(y0, y1, n_vertices)  # (V,)
    vertical = [numpy.stack([numpy.full(n_vertices, x), along_y], axis=1) for x in numpy.linspace(x0, x1, n_lines)]
    horizontal = [numpy.stack([along_x, numpy.full(n_vertices, y)], axis=1) for y in numpy.linspace(y0, y1, n_lines)]
    return numpy.stack(vertical + horizontal)  # (2 * n_lines, V, 2)


def _latent_panel_box(latent_box):
    """The limits of a panel of base samples: ``latent_box`` and 15% more on each side."""
    (lo, hi), _ = _as_box(latent_box)
    return _as_box((lo - 0.15 * (hi - lo), hi + 0.15 * (hi - lo)))


def _draw_panel(ax, points, lines, colours, title, limits):
    """One panel: the grid lines (M, V, 2) under the points (P, 2), titled, within ``limits``."""
    ax.add_collection(LineCollection(lines, colors=_GRID_COLOR, linewidths=0.6, alpha=0.8, zorder=1))
    ax.scatter(points[:, 0], points[:, 1], s=3, c=colours, linewidths=0, zorder=2, rasterized=True)
    ax.set_title(title, fontsize=14)
    _clean_panel(ax, limits)


def _push(model, points, lines, direction):
    """Points (P, 2) and grid lines (M, V, 2) through every layer, as host arrays.

    Returns two lists with one entry per step (``len(flow) + 1`` entries):
    the points (P, 2) and the lines (M, V, 2) before any layer, then after
    each one, in ``forward`` (data -> latent) or ``inverse`` order.
    """
    xp, dtype = _model_module(model)
    n_points = points.shape[0]
    batch = numpy.concatenate([points, lines.reshape(-1, 2)])  # (P + M*V, 2)
    batch = to_device(batch, xp, dtype)
    run = model.flow.forward_steps if direction == "forward" else model.flow.inverse_steps
    steps = [to_numpy(s).astype(numpy.float64) for s in run(batch)]  # host, once per step
    return [s[:n_points] for s in steps], [s[n_points:].reshape(lines.shape) for s in steps]


def plot_warping(model, toy, path=None, n_points=1500, n_lines=11, seed=0, latent_box=(-3.0, 3.0)):
    """The flow, layer by layer: a grid and a point cloud pushed through each layer.

    Top row (density direction, ``model.flow.forward_steps``): exact data
    samples and a grid over ``toy.box``, then their images after layer 0,
    1, ..., L-1; the last panel is the latent space. Bottom row (sampling
    direction, ``inverse_steps``): base samples and a grid over
    ``latent_box``, then after the inverse of layer L-1, ..., 0; the last
    panel is the model's samples. One panel per layer, titled "layer k"
    (bottom: "layer k⁻¹"). Points are coloured by their x coordinate in
    data space, in both rows, so a reader can follow each region.

    Args:
        model: a FlowModel whose ``flow`` is a ``Flow`` on 2D data.
        toy: a ToyDensity (its sampler and box).
        path: save the figure there as PNG if given.
        n_points: points per row; n_lines: grid lines per direction.
        seed: the points are drawn from ``make_rng(seed)`` on the model's module.
        latent_box: the grid of the bottom row, in latent space.
    """
    xp, _ = _model_module(model)
    rng = make_rng(seed, xp)
    n_layers = len(model.flow)
    data_x = to_numpy(toy.sample(n_points, rng, numpy.float64))  # (P, 2)
    z = to_numpy(model.base.sample(n_points, rng, numpy.float64))  # (P, 2)
    data_limits = _square_limits(data_x, pad=0.08)  # the grid stays where the data is
    top_points, top_lines = _push(model, data_x, _grid_lines(data_limits, n_lines), "forward")
    bottom_points, bottom_lines = _push(model, z, _grid_lines(latent_box, n_lines), "inverse")
    rows = [
        (
            top_points,
            top_lines,
            _point_colours(top_points[0][:, 0], toy.box),
            ["data x"] + [f"layer {k}" for k in range(n_layers)],
            "data → latent\n(forward)",
        ),
        (
            bottom_points,
            bottom_lines,
            _point_colours(bottom_points[-1][:, 0], toy.box),
            ["latent z"] + [f"layer {k}$^{{-1}}$" for k in reversed(range(n_layers))],
            "latent → data\n(inverse)",
        ),
    ]
    fixed = {(0, 0): data_limits, (1, n_layers): data_limits, (1, 0): _latent_panel_box(latent_box)}
    with matplotlib.rc_context(STYLE):
        fig = _new_figure(2.35 * (n_layers + 1), 5.6)
        axes = fig.subplots(2, n_layers + 1, squeeze=False)
        for row, (points, lines, colours, titles, label) in enumerate(rows):
            for col in range(n_layers + 1):
                limits = fixed.get((row, col)) or _square_limits(points[col])
                _draw_panel(axes[row, col], points[col], lines[col], colours, titles[col], limits)
            axes[row, 0].set_ylabel(label, fontsize=14)
        fig.suptitle(
            f"{toy.name}: how the flow warps space, layer by layer (colour: horizontal position in data space)"
        )
        fig.subplots_adjust(wspace=0.08, hspace=0.28, left=0.05, right=0.99, top=0.86, bottom=0.02)
    return _finish(fig, path)
