"""Pictures of 2D flows: density heatmaps, samples, layer-by-layer warping, loss curves, animations.

Every plotting function takes a model (a ``FlowModel`` on 2D data) and/or a
toy density (``minflow.data.toy2d.get_toy(name)``), returns a Matplotlib
``Figure`` and, given ``path``, also saves it as a PNG (``save_figure``).

Conventions:
    - Direction: ``model.flow.forward`` maps data x to latent z (the density
      direction), ``inverse`` maps z to x (the sampling direction).
    - Arrays may live on a GPU: they are converted to NumPy with
      ``backend.to_numpy`` once, here, and nowhere in the computing code.
    - Figures are built on the Agg canvas directly (no ``pyplot``), so nothing
      opens a window and no global backend is switched; in Jupyter, a returned
      figure displays as the cell's value.
    - Styled for a projector: large fonts, clean axes, the perceptually
      uniform colormaps viridis (densities) and plasma (point colours); the
      style is applied per figure and never changes Matplotlib's global state.
"""

import os

import matplotlib
import numpy
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .backend import get_array_module, make_rng, to_device, to_numpy

__all__ = [
    "DENSITY_CMAP",
    "POINT_CMAP",
    "STYLE",
    "animate_ode_warping",
    "animate_warping",
    "density_grid",
    "plot_density_comparison",
    "plot_loss",
    "plot_ode_warping",
    "plot_samples",
    "plot_warping",
    "save_figure",
]

DENSITY_CMAP = "viridis"  # perceptually uniform, dark = low density
POINT_CMAP = "plasma"  # colours points by where they lie in data space
_POINT_CMAP_RANGE = (0.0, 0.85)  # skip plasma's pale yellow end, weak on white
_SAMPLE_COLOR = "#3b528b"  # a viridis blue: one colour for model and data samples
_GRID_COLOR = "0.55"

# Large fonts and clean axes, readable from the back of a lecture room.
STYLE = {
    "font.size": 14,
    "axes.titlesize": 16,
    "axes.labelsize": 15,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 13,
    "figure.titlesize": 18,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 1.0,
    "lines.linewidth": 2.0,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "image.cmap": DENSITY_CMAP,
}

_EVAL_BATCH = 10_000  # rows per call when evaluating a log-density on a grid


# --------------------------------------------------------------- helpers


def save_figure(fig, path, dpi=120):
    """Save ``fig`` as an image at ``path`` (format from the extension), creating folders.

    Returns ``path``. ``dpi=120`` gives about 1,000-2,500 pixels across for
    the figures here: sharp on a projector, small in a repository.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.15)
    return path


def _new_figure(width, height):
    """A Figure on the Agg canvas (no pyplot: no window, no global state)."""
    fig = Figure(figsize=(width, height), layout=None)
    FigureCanvasAgg(fig)
    return fig


def _finish(fig, path):
    """Save when a path is given; return the figure either way."""
    if path is not None:
        save_figure(fig, path)
    return fig


def _model_module(model):
    """The array module (numpy or cupy) and dtype of the model's parameters."""
    params = list(model.params.values())
    if not params:
        return numpy, numpy.float64
    return get_array_module(*params), params[0].dtype


def _as_box(box):
    """Accept (lo, hi) for the square [lo, hi]^2 or ((x0, x1), (y0, y1)); return the latter."""
    box = tuple(box)
    if len(box) == 2 and numpy.ndim(box[0]) == 0:
        lo, hi = float(box[0]), float(box[1])
        return (lo, hi), (lo, hi)
    if len(box) == 2 and all(numpy.shape(b) == (2,) for b in box):
        return (float(box[0][0]), float(box[0][1])), (float(box[1][0]), float(box[1][1]))
    raise ValueError(f"box must be (lo, hi) or ((x0, x1), (y0, y1)); got {box!r}.")


def _square_limits(points, pad=0.12, quantile=0.5):
    """Square axis limits holding all but ``quantile`` percent of points on each side, padded.

    Robust to a few points thrown far out by a layer; returns ((x0, x1), (y0, y1)).
    """
    lo = numpy.percentile(points, quantile, axis=0)  # (2,)
    hi = numpy.percentile(points, 100 - quantile, axis=0)  # (2,)
    centre = 0.5 * (lo + hi)
    half = 0.5 * float(numpy.max(hi - lo)) * (1 + 2 * pad) + 1e-9
    return (centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half)


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


def _point_colours(values, box):
    """RGBA colours (N, 4) for the data-space x coordinates ``values``, from POINT_CMAP."""
    (x0, x1), _ = _as_box(box)
    u = numpy.clip((values - x0) / (x1 - x0), 0.0, 1.0)
    a, b = _POINT_CMAP_RANGE
    return matplotlib.colormaps[POINT_CMAP](a + (b - a) * u)


def _clean_panel(ax, limits, ticks=False):
    """Equal aspect, given limits, a thin frame; no ticks unless asked."""
    (x0, x1), (y0, y1) = limits
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_linewidth(0.8)
        spine.set_color("0.6")
    if not ticks:
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.locator_params(nbins=5)


# --------------------------------------------------------------- densities


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


def _finite_max(a):
    finite = a[numpy.isfinite(a)]
    return float(finite.max()) if finite.size else 1.0


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


# ---------------------------------------------------------------- samples


def plot_samples(model, toy, n=2000, rng=None, path=None):
    """Model samples beside exact data samples, on the same axes.

    Args:
        model: a FlowModel on 2D data. toy: a ToyDensity.
        n: points per panel.
        rng: random generator on the model's array module (default: seed 0);
            it draws the model's samples, then the data's.
        path: save the figure there as PNG if given.
    """
    xp, dtype = _model_module(model)
    rng = rng if rng is not None else make_rng(0, xp)
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


# ---------------------------------------------------------------- warping


def plot_warping(model, toy, path=None, n_points=1500, n_lines=11, rng=None, latent_box=(-3.0, 3.0)):
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
        rng: random generator on the model's module (default: seed 0).
        latent_box: the grid of the bottom row, in latent space.
    """
    xp, _ = _model_module(model)
    rng = rng if rng is not None else make_rng(0, xp)
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
    (lo, hi), _ = _as_box(latent_box)
    fixed = {
        (0, 0): data_limits,
        (1, n_layers): data_limits,
        (1, 0): _as_box((lo - 0.15 * (hi - lo), hi + 0.15 * (hi - lo))),
    }
    with matplotlib.rc_context(STYLE):
        fig = _new_figure(2.35 * (n_layers + 1), 5.6)
        axes = fig.subplots(2, n_layers + 1, squeeze=False)
        for row, (points, lines, colours, titles, label) in enumerate(rows):
            for col in range(n_layers + 1):
                ax = axes[row, col]
                ax.add_collection(LineCollection(lines[col], colors=_GRID_COLOR, linewidths=0.6, alpha=0.8, zorder=1))
                ax.scatter(
                    points[col][:, 0], points[col][:, 1], s=3, c=colours, linewidths=0, zorder=2, rasterized=True
                )
                ax.set_title(titles[col], fontsize=14)
                _clean_panel(ax, fixed.get((row, col)) or _square_limits(points[col]))
            axes[row, 0].set_ylabel(label, fontsize=14)
        fig.suptitle(
            f"{toy.name}: how the flow warps space, layer by layer (colour: horizontal position in data space)"
        )
        fig.subplots_adjust(wspace=0.08, hspace=0.28, left=0.05, right=0.99, top=0.86, bottom=0.02)
    return _finish(fig, path)


# -------------------------------------------------------------------- loss


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


# --------------------------------------------------------------- animation


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
    rng=None,
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
        rng: random generator on the model's module (default: seed 0).
        dpi: resolution; the frame is 5.4 x 6 inches.
        latent_box: the starting grid, in latent space.
        title: the line above the panel (default: "<dataset>: a flow of L layers").

    Returns:
        the number of frames written: 2 * (hold + L * frames_per_layer).
        Made with Matplotlib's PillowWriter: no external programs.
    """
    from matplotlib.animation import PillowWriter

    for name, value in [("frames_per_layer", frames_per_layer), ("hold", hold), ("fps", fps), ("n_points", n_points)]:
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    xp, dtype = _model_module(model)
    rng = rng if rng is not None else make_rng(0, xp)
    n_layers = len(model.flow)
    z = to_numpy(model.base.sample(int(n_points), rng, numpy.float64))  # (P, 2)
    points, lines = _push(model, z, _grid_lines(latent_box, n_lines), "inverse")
    # Key states indexed by position along the flow: 0 = data x, L = latent z
    # (state m enters layer m in the forward direction).
    points, lines = points[::-1], lines[::-1]
    colours = _point_colours(points[0][:, 0], toy.box)
    limits = _square_limits(numpy.concatenate(points), pad=0.05, quantile=0.3)
    heat = None
    if density:
        heat = []
        for m in range(n_layers + 1):
            _, _, log_q = density_grid(_tail_log_density(model, m), limits, 160, xp=xp, dtype=dtype)
            q = numpy.exp(log_q - _finite_max(log_q))  # each state scaled to its own peak
            heat.append(numpy.nan_to_num(q, nan=0.0, posinf=1.0))

    # The timeline, one entry per frame: (position p in [0, L], title, layer
    # being crossed or None). p moves L -> 0 (sampling), then 0 -> L (density).
    timeline = [(float(n_layers), "latent z ~ N(0, I)", None)] * int(hold)
    for k in reversed(range(n_layers)):  # through the inverse of layer k: p from k + 1 to k
        text = f"layer {k}$^{{-1}}$:  latent → data"
        timeline += [(k + 1 - _eased((i + 1) / frames_per_layer), text, k) for i in range(frames_per_layer)]
    timeline += [(0.0, f"data x  ({toy.name})", None)] * int(hold)
    for k in range(n_layers):  # through layer k: p from k to k + 1
        text = f"layer {k}:  data → latent"
        timeline += [(k + _eased((i + 1) / frames_per_layer), text, k) for i in range(frames_per_layer)]

    def state_at(p):
        """Points, grid lines and heatmap at position p, linear between the two nearest states."""
        k = min(int(numpy.floor(p)), n_layers - 1)
        s = p - k  # 0 at state k, 1 at state k + 1
        pts = (1 - s) * points[k] + s * points[k + 1]  # (P, 2)
        lns = (1 - s) * lines[k] + s * lines[k + 1]  # (M, V, 2)
        img = None if heat is None else (1 - s) * heat[k] + s * heat[k + 1]
        return pts, lns, img

    with matplotlib.rc_context(STYLE):
        fig = _new_figure(5.4, 6.0)
        ax = fig.add_axes([0.04, 0.2, 0.92, 0.68])
        (lx0, lx1), (ly0, ly1) = limits
        pts, lns, img = state_at(timeline[0][0])
        if heat is not None:
            image = ax.imshow(
                img,
                origin="lower",
                extent=(lx0, lx1, ly0, ly1),
                cmap=DENSITY_CMAP,
                vmin=0.0,
                vmax=1.0,
                interpolation="bilinear",
                zorder=0,
            )
        grid_colour = "white" if heat is not None else _GRID_COLOR
        grid = LineCollection(lns, colors=grid_colour, linewidths=0.7, alpha=0.55, zorder=1)
        ax.add_collection(grid)
        cloud = ax.scatter(pts[:, 0], pts[:, 1], s=7, c=colours, linewidths=0, zorder=2)
        _clean_panel(ax, limits)
        caption = ax.set_title("", fontsize=17, pad=10)
        fig.suptitle(title or f"{toy.name}: a flow of {n_layers} layers", fontsize=15, y=0.975)

        # The layer strip: x | layer 0 | ... | layer L-1 | z, with a marker at p.
        strip = fig.add_axes([0.08, 0.075, 0.84, 0.07])
        strip.set_xlim(-0.6, n_layers + 0.6)
        strip.set_ylim(0, 1)
        strip.set_axis_off()
        boxes = []
        for k in range(n_layers):
            box = Rectangle((k + 0.08, 0.15), 0.84, 0.7, facecolor="0.92", edgecolor="0.6", linewidth=1)
            strip.add_patch(box)
            strip.text(k + 0.5, 0.5, str(k), ha="center", va="center", fontsize=12, color="0.3")
            boxes.append(box)
        strip.text(-0.35, 0.5, "x", ha="center", va="center", fontsize=16, style="italic")
        strip.text(n_layers + 0.35, 0.5, "z", ha="center", va="center", fontsize=16, style="italic")
        marker = strip.plot([n_layers], [1.12], marker="v", markersize=13, color="#b5367a", clip_on=False)[0]
        progress = fig.add_axes([0.08, 0.03, 0.84, 0.012])
        progress.set_axis_off()
        progress.set_xlim(0, 1)
        progress.set_ylim(0, 1)
        progress.add_patch(Rectangle((0, 0), 1, 1, facecolor="0.93", edgecolor="none"))
        done = Rectangle((0, 0), 0, 1, facecolor="0.55", edgecolor="none")
        progress.add_patch(done)

        writer = PillowWriter(fps=int(fps))
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        with writer.saving(fig, path, dpi):
            for i, (p, text, layer) in enumerate(timeline):
                pts, lns, img = state_at(p)
                cloud.set_offsets(pts)
                grid.set_segments(lns)
                if heat is not None:
                    image.set_data(img)
                for k, box in enumerate(boxes):
                    box.set_facecolor("#f3c3dc" if k == layer else "0.92")
                marker.set_xdata([p])
                caption.set_text(text)
                done.set_width((i + 1) / len(timeline))  # every frame differs, so the GIF merges none
                writer.grab_frame()
    return len(timeline)


# ------------------------------------------------ continuous flows (along t)


def _ode_states(model, z, lines, times, n_steps=None):
    """Points (P, 2) and grid lines (M, V, 2) moved by the model's ODE from t = 0 to each of ``times`` (host)."""
    xp, dtype = _model_module(model)
    n_points = z.shape[0]
    batch = to_device(numpy.concatenate([z, lines.reshape(-1, 2)]), xp, dtype)  # (P + M*V, 2)
    states = [to_numpy(s).astype(numpy.float64) for s in model.transport(batch, times, n_steps=n_steps)]
    return [s[:n_points] for s in states], [s[n_points:].reshape(lines.shape) for s in states]


def plot_ode_warping(model, toy, path=None, n_panels=5, n_points=1500, n_lines=11, rng=None, latent_box=(-3.0, 3.0)):
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
        rng: random generator on the model's module (default: seed 0).
        latent_box: the grid at t = 0.
    """
    if int(n_panels) != n_panels or n_panels < 2:
        raise ValueError(f"n_panels must be an integer >= 2; got {n_panels!r}.")
    xp, _ = _model_module(model)
    rng = rng if rng is not None else make_rng(0, xp)
    times = [k / (n_panels - 1) for k in range(n_panels)]
    n_steps = (n_panels - 1) * -(-model.n_steps // (n_panels - 1))  # so every panel's t is on the solver's grid
    z = to_numpy(model.base.sample(n_points, rng, numpy.float64))  # (P, 2)
    points, lines = _ode_states(model, z, _grid_lines(latent_box, n_lines), times, n_steps)
    colours = _point_colours(points[-1][:, 0], toy.box)
    (lo, hi), _ = _as_box(latent_box)
    with matplotlib.rc_context(STYLE):
        fig = _new_figure(2.6 * n_panels, 3.2)
        axes = fig.subplots(1, n_panels, squeeze=False)[0]
        for ax, t, pts, lns in zip(axes, times, points, lines):
            ax.add_collection(LineCollection(lns, colors=_GRID_COLOR, linewidths=0.6, alpha=0.8, zorder=1))
            ax.scatter(pts[:, 0], pts[:, 1], s=3, c=colours, linewidths=0, zorder=2, rasterized=True)
            ax.set_title(f"t = {t:.2f}", fontsize=14)
            box = _as_box((lo - 0.15 * (hi - lo), hi + 0.15 * (hi - lo))) if t == 0 else _square_limits(pts)
            _clean_panel(ax, box)
        fig.suptitle(f"{toy.name}: noise (t = 0) to data (t = 1) along dx/dt = v(x, t)")
        fig.subplots_adjust(wspace=0.08, left=0.02, right=0.98, top=0.78, bottom=0.02)
    return _finish(fig, path)


def animate_ode_warping(
    model, toy, path, hold=14, fps=16, n_points=1000, n_lines=11, rng=None, dpi=80, latent_box=(-3.0, 3.0), title=None
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
        rng: random generator on the model's module (default: seed 0).
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
    rng = rng if rng is not None else make_rng(0, xp)
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
