"""The look and the plumbing shared by every figure: colours, the projector style, Agg figures, saving, panels.

Figures are built on the Agg canvas directly (no ``pyplot``): nothing opens a
window and no global backend is switched; the style applies per figure.
"""

import os

import matplotlib
import numpy
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..backend import get_array_module

__all__ = ["DENSITY_CMAP", "POINT_CMAP", "STYLE", "save_figure"]

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


def _finite_max(a):
    finite = a[numpy.isfinite(a)]
    return float(finite.max()) if finite.size else 1.0
