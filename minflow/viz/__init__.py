"""Pictures of 2D flows: density heatmaps, samples, layer-by-layer warping, loss curves, animations.

One file per kind of picture: ``plots2d`` (densities, samples, loss),
``warping`` (the flow layer by layer), ``animation`` (the same as a GIF),
``images`` (grids of small images), ``ode_warping`` (a continuous flow
along t, as panels and as a GIF);
``style`` holds the colours, the projector style and the figure plumbing.

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

from .animation import animate_warping
from .images import show_images, tile_images
from .ode_warping import animate_ode_warping, plot_ode_warping
from .plots2d import density_grid, plot_density_comparison, plot_loss, plot_samples
from .style import DENSITY_CMAP, POINT_CMAP, STYLE, save_figure
from .warping import plot_warping

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
    "show_images",
    "tile_images",
]
