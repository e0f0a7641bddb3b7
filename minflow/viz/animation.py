"""A GIF of the flow warping the Gaussian into the data, layer by layer, and back.

In parts: the key states (points, grid lines, optional density heatmaps
before and after every layer), the timeline (which position along the flow
each frame shows), the frame (a panel and a layer strip), and the writer
that moves the frame along the timeline.
"""

import os

import matplotlib
import numpy
from matplotlib.collections import LineCollection
from matplotlib.patches import Rectangle

from ..backend import make_rng, to_numpy
from .plots2d import density_grid
from .style import (
    _GRID_COLOR,
    DENSITY_CMAP,
    STYLE,
    _clean_panel,
    _finite_max,
    _model_module,
    _new_figure,
    _point_colours,
    _square_limits,
)
from .warping import _grid_lines, _push

__all__ = ["animate_warping"]


def _eased(t):
    """Smoothstep 3t^2 - 2t^3: starts and stops gently at each layer."""
    return t * t * (3.0 - 2.0 * t)


def _tail_log_density(model, first):
    """log-density of the representation entering layer ``first``: layers first..L-1, then the base."""

    def log_prob(h):
        logdet = 0.0
        for layer in model.flow.layers[first:]:
            h, layer_logdet = layer.forward(h)
            logdet = logdet + layer_logdet
        return model.base.log_prob(h) + logdet

    return log_prob


def animate_warping(
    model,
    toy,
    path,
    frames_per_layer=10,
    hold=14,
    fps=16,
    n_points=1000,
    n_lines=11,
    density=False,
    seed=0,
    dpi=80,
    latent_box=(-3.0, 3.0),
    title=None,
):
    """A GIF of the flow warping the Gaussian into the data, layer by layer, and back.

    The animation starts from base samples z ~ N(0, I) and a square grid,
    moves them through the inverse of layer L-1, ..., 0 to data space (the
    sampling direction), pauses, then returns through layer 0, ..., L-1 to the
    latent space (the density direction); it loops. Between two layers every
    point moves on the straight line from its position before the layer to
    its position after it (eased in time), so one can watch each coupling
    move one coordinate while it copies the other. A strip at the bottom
    shows the current layer; points are coloured by their x coordinate in
    data space.

    Args:
        model: a FlowModel whose ``flow`` is a ``Flow`` on 2D data.
        toy: a ToyDensity (title, colour range).
        path: where to write the GIF (folders are created).
        frames_per_layer: frames for the move through one layer.
        hold: frames paused at the Gaussian and at the data.
        fps: frames per second.
        n_points, n_lines: points and grid lines per direction.
        density: draw the density of the current representation as a
            heatmap behind the points, each state scaled to its own peak,
            crossfaded between layers.
        seed: the points are drawn from ``make_rng(seed)`` on the model's module.
        dpi: resolution; the frame is 5.4 x 6 inches.
        latent_box: the starting grid, in latent space.
        title: the line above the panel (default: "<dataset>: a flow of L layers").

    Returns:
        the number of frames written: 2 * (hold + L * frames_per_layer).
        Made with Matplotlib's PillowWriter: no external programs.
    """
    for name, value in [("frames_per_layer", frames_per_layer), ("hold", hold), ("fps", fps), ("n_points", n_points)]:
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    states = _key_states(model, toy, n_points, n_lines, latent_box, seed, density)
    timeline = _timeline(len(model.flow), frames_per_layer, hold, toy.name)
    with matplotlib.rc_context(STYLE):
        frame = _Frame(states, title or f"{toy.name}: a flow of {len(model.flow)} layers")
        _write_gif(frame, states, timeline, path, fps, dpi)
    return len(timeline)


# -- the parts -------------------------------------------------------------------------------


class _States:
    """Key states indexed by position along the flow, 0 = data x, L = latent z (state m enters layer m).

    points[m] (P, 2), lines[m] (M, V, 2), heat[m] (160, 160) or heat None,
    colours (P, 4) by data-space x, limits of the panel.
    """

    def __init__(self, points, lines, colours, limits, heat):
        self.points, self.lines, self.colours, self.limits, self.heat = points, lines, colours, limits, heat
        self.n_layers = len(points) - 1

    def at(self, p):
        """Points, grid lines and heatmap at position p, linear between the two nearest states."""
        k = min(int(numpy.floor(p)), self.n_layers - 1)
        s = p - k  # 0 at state k, 1 at state k + 1
        pts = (1 - s) * self.points[k] + s * self.points[k + 1]  # (P, 2)
        lns = (1 - s) * self.lines[k] + s * self.lines[k + 1]  # (M, V, 2)
        img = None if self.heat is None else (1 - s) * self.heat[k] + s * self.heat[k + 1]
        return pts, lns, img


def _key_states(model, toy, n_points, n_lines, latent_box, seed, density):
    """Base samples and a latent grid pushed through the inverse of every layer (and the heatmaps)."""
    xp, dtype = _model_module(model)
    rng = make_rng(seed, xp)
    z = to_numpy(model.base.sample(int(n_points), rng, numpy.float64))  # (P, 2)
    points, lines = _push(model, z, _grid_lines(latent_box, n_lines), "inverse")
    points, lines = points[::-1], lines[::-1]  # from data x (0) to latent z (L)
    colours = _point_colours(points[0][:, 0], toy.box)
    limits = _square_limits(numpy.concatenate(points), pad=0.05, quantile=0.3)
    heat = None
    if density:
        heat = []
        for m in range(len(points)):
            _, _, log_q = density_grid(_tail_log_density(model, m), limits, 160, xp=xp, dtype=dtype)
            q = numpy.exp(log_q - _finite_max(log_q))  # each state scaled to its own peak
            heat.append(numpy.nan_to_num(q, nan=0.0, posinf=1.0))
    return _States(points, lines, colours, limits, heat)


def _timeline(n_layers, frames_per_layer, hold, name):
    """One entry per frame: (position p in [0, L], title, layer being crossed or None).

    p moves L -> 0 (sampling), pauses at the data, then 0 -> L (density).
    """
    timeline = [(float(n_layers), "latent z ~ N(0, I)", None)] * int(hold)
    for k in reversed(range(n_layers)):  # through the inverse of layer k: p from k + 1 to k
        text = f"layer {k}$^{{-1}}$:  latent → data"
        timeline += [(k + 1 - _eased((i + 1) / frames_per_layer), text, k) for i in range(frames_per_layer)]
    timeline += [(0.0, f"data x  ({name})", None)] * int(hold)
    for k in range(n_layers):  # through layer k: p from k to k + 1
        text = f"layer {k}:  data → latent"
        timeline += [(k + _eased((i + 1) / frames_per_layer), text, k) for i in range(frames_per_layer)]
    return timeline


class _Frame:
    """The figure of one frame: the panel (heatmap, grid, points, caption), the layer strip and a progress bar."""

    def __init__(self, states, title):
        n_layers = states.n_layers
        self.fig = fig = _new_figure(5.4, 6.0)
        ax = fig.add_axes([0.04, 0.2, 0.92, 0.68])
        (lx0, lx1), (ly0, ly1) = states.limits
        pts, lns, img = states.at(float(n_layers))
        self.image = None
        if states.heat is not None:
            self.image = ax.imshow(
                img,
                origin="lower",
                extent=(lx0, lx1, ly0, ly1),
                cmap=DENSITY_CMAP,
                vmin=0.0,
                vmax=1.0,
                interpolation="bilinear",
                zorder=0,
            )
        grid_colour = "white" if states.heat is not None else _GRID_COLOR
        self.grid = LineCollection(lns, colors=grid_colour, linewidths=0.7, alpha=0.55, zorder=1)
        ax.add_collection(self.grid)
        self.cloud = ax.scatter(pts[:, 0], pts[:, 1], s=7, c=states.colours, linewidths=0, zorder=2)
        _clean_panel(ax, states.limits)
        self.caption = ax.set_title("", fontsize=17, pad=10)
        fig.suptitle(title, fontsize=15, y=0.975)
        self._add_strip(n_layers)

    def _add_strip(self, n_layers):
        """The layer strip: x | layer 0 | ... | layer L-1 | z, with a marker at p; a progress bar below."""
        fig = self.fig
        strip = fig.add_axes([0.08, 0.075, 0.84, 0.07])
        strip.set_xlim(-0.6, n_layers + 0.6)
        strip.set_ylim(0, 1)
        strip.set_axis_off()
        self.boxes = []
        for k in range(n_layers):
            box = Rectangle((k + 0.08, 0.15), 0.84, 0.7, facecolor="0.92", edgecolor="0.6", linewidth=1)
            strip.add_patch(box)
            strip.text(k + 0.5, 0.5, str(k), ha="center", va="center", fontsize=12, color="0.3")
            self.boxes.append(box)
        strip.text(-0.35, 0.5, "x", ha="center", va="center", fontsize=16, style="italic")
        strip.text(n_layers + 0.35, 0.5, "z", ha="center", va="center", fontsize=16, style="italic")
        self.marker = strip.plot([n_layers], [1.12], marker="v", markersize=13, color="#b5367a", clip_on=False)[0]
        progress = fig.add_axes([0.08, 0.03, 0.84, 0.012])
        progress.set_axis_off()
        progress.set_xlim(0, 1)
        progress.set_ylim(0, 1)
        progress.add_patch(Rectangle((0, 0), 1, 1, facecolor="0.93", edgecolor="none"))
        self.done = Rectangle((0, 0), 0, 1, facecolor="0.55", edgecolor="none")
        progress.add_patch(self.done)

    def show(self, state, p, text, layer, fraction_done):
        """Move the artists to ``state`` (points, lines, heatmap) at position p."""
        pts, lns, img = state
        self.cloud.set_offsets(pts)
        self.grid.set_segments(lns)
        if self.image is not None:
            self.image.set_data(img)
        for k, box in enumerate(self.boxes):
            box.set_facecolor("#f3c3dc" if k == layer else "0.92")
        self.marker.set_xdata([p])
        self.caption.set_text(text)
        self.done.set_width(fraction_done)  # every frame differs, so the GIF merges none


def _write_gif(frame, states, timeline, path, fps, dpi):
    """One GIF frame per timeline entry, with Matplotlib's PillowWriter (no external programs)."""
    from matplotlib.animation import PillowWriter

    writer = PillowWriter(fps=int(fps))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with writer.saving(frame.fig, path, dpi):
        for i, (p, text, layer) in enumerate(timeline):
            frame.show(states.at(p), p, text, layer, (i + 1) / len(timeline))
            writer.grab_frame()
