"""Image grids: many small grey-scale images (samples, reconstructions, interpolations) tiled in one panel."""

import math

import matplotlib
import numpy

__all__ = ["show_images", "tile_images"]


def tile_images(images, n_cols, gap=1):
    """(n, H, W) images in [0, 1] -> one host array (rows of n_cols images), separated by gap pixels of NaN."""
    n, height, width = images.shape
    n_rows = math.ceil(n / n_cols)
    out = numpy.full((n_rows * (height + gap) - gap, n_cols * (width + gap) - gap), numpy.nan)
    for k in range(n):
        i, j = divmod(k, n_cols)
        out[i * (height + gap) : i * (height + gap) + height, j * (width + gap) : j * (width + gap) + width] = images[k]
    return out


def show_images(ax, images, n_cols, title):
    """Draw (n, H, W) images in [0, 1] on ``ax`` as a grid of n_cols columns: ink dark on white, clipped to [0, 1]."""
    cmap = matplotlib.colormaps["gray_r"].with_extremes(bad="#c8d4e0")  # ink dark on white, gaps light blue
    ax.imshow(tile_images(numpy.clip(images, 0, 1), n_cols), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
