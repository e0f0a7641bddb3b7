"""Tests for minflow/viz/: density grids, the PNG figures and the warping animation.

Each figure is written to a temporary folder (never over the committed
figures) and read back as an image; density_grid is checked against closed
forms (a standard normal integrates to 1; a linear function lands on the
right cells).
"""

import math

import matplotlib.image
import numpy
import pytest
from helpers import randomize_params
from matplotlib.figure import Figure
from PIL import Image

from minflow import viz
from minflow.backend import get_backend, to_device, to_numpy
from minflow.data.toy2d import get_toy
from minflow.zoo import realnvp_2d


@pytest.fixture(scope="module")
def warped_model():
    """A 3-layer R2 with random (non-identity) parameters: it visibly bends space."""
    return randomize_params(realnvp_2d(n_layers=3, hidden=(8, 8), seed=0), numpy.random.default_rng(0), scale=0.3)


def assert_png(path, min_size=(100, 100)):
    """The file exists, is a non-empty PNG, and loads as an (H, W, 3 or 4) image of at least min_size."""
    assert path.exists() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] >= min_size[0] and image.shape[1] >= min_size[1]
    assert image.std() > 0.01  # not a blank canvas
    return image


# ------------------------------------------------------------- density_grid


def test_density_grid_of_standard_normal_model_integrates_to_one():
    model = realnvp_2d(n_layers=2, seed=0)  # zero last layers: the identity over N(0, I)
    X, Y, log_q = viz.density_grid(model.log_prob, (-6.0, 6.0), n=120, xp=get_backend(), dtype=numpy.float32)
    assert X.shape == Y.shape == log_q.shape == (120, 120)
    cell_area = (X[0, 1] - X[0, 0]) * (Y[1, 0] - Y[0, 0])
    assert numpy.exp(log_q).sum() * cell_area == pytest.approx(1.0, abs=1e-3)
    exact = -0.5 * (X**2 + Y**2) - math.log(2 * math.pi)
    numpy.testing.assert_allclose(log_q, exact, atol=1e-4)


def test_density_grid_puts_values_on_cell_centres_in_batches():
    # An asymmetric function catches a swapped or transposed grid; batch_size 7 splits it unevenly.
    X, Y, values = viz.density_grid(lambda x: x[:, 0] + 10 * x[:, 1], ((0.0, 4.0), (-1.0, 1.0)), n=8, batch_size=7)
    numpy.testing.assert_allclose(X[0], 0.25 + 0.5 * numpy.arange(8))  # cell centres along x
    numpy.testing.assert_allclose(Y[:, 0], -0.875 + 0.25 * numpy.arange(8))  # and along y
    numpy.testing.assert_allclose(values, X + 10 * Y)


def test_density_grid_rejects_bad_box_and_n():
    with pytest.raises(ValueError, match="box must be"):
        viz.density_grid(lambda x: x[:, 0], (0.0, 1.0, 2.0))
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        viz.density_grid(lambda x: x[:, 0], (0.0, 1.0), n=1)


# ------------------------------------------------------------------ figures


def test_plot_density_comparison_writes_png_with_gap_in_title(warped_model, tmp_path):
    path = tmp_path / "nested" / "density.png"  # folders are created
    fig = viz.plot_density_comparison(warped_model, get_toy("moons"), path=path, gap=0.0217, n=60)
    assert isinstance(fig, Figure)
    assert "0.022 nats" in fig._suptitle.get_text()
    assert [ax.get_title() for ax in fig.axes[:2]] == ["model density q(x)", "true density p(x)"]
    images = [ax.get_images()[0] for ax in fig.axes[:2]]
    assert images[0].get_clim() == images[1].get_clim()  # one colour scale for both
    assert_png(path)


def test_plot_density_comparison_uses_histogram_for_sample_only_data(warped_model, tmp_path):
    fig = viz.plot_density_comparison(warped_model, get_toy("spirals"), path=tmp_path / "d.png", n=50, n_hist=5000)
    assert fig.axes[1].get_title() == "data histogram"
    assert "nats" not in fig._suptitle.get_text()
    assert_png(tmp_path / "d.png")


def test_plot_samples_writes_png(warped_model, tmp_path):
    fig = viz.plot_samples(warped_model, get_toy("gaussians8"), n=300, seed=1, path=tmp_path / "s.png")
    assert [ax.get_title() for ax in fig.axes] == ["model samples", "data samples"]
    assert [len(ax.collections[0].get_offsets()) for ax in fig.axes] == [300, 300]
    assert_png(tmp_path / "s.png")


def test_plot_warping_has_one_panel_per_layer_in_both_directions(warped_model, tmp_path):
    fig = viz.plot_warping(warped_model, get_toy("moons"), path=tmp_path / "w.png", n_points=200, n_lines=5)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["data x", "layer 0", "layer 1", "layer 2"] + [
        "latent z",
        "layer 2$^{-1}$",
        "layer 1$^{-1}$",
        "layer 0$^{-1}$",
    ]
    assert_png(tmp_path / "w.png", min_size=(300, 600))


def test_plot_warping_last_panels_are_the_flow_applied(warped_model):
    # Top row ends at z = f(x) of the data it starts from; bottom row ends at f^{-1}(z).
    toy = get_toy("moons")
    fig = viz.plot_warping(warped_model, toy, n_points=50, n_lines=3, seed=5)
    top_first, top_last = fig.axes[0].collections[1].get_offsets(), fig.axes[3].collections[1].get_offsets()
    z, _ = warped_model.flow.forward(to_device(top_first, dtype=numpy.float32))  # the model's (default) backend
    numpy.testing.assert_allclose(top_last, to_numpy(z), atol=1e-4)
    bottom_first, bottom_last = fig.axes[4].collections[1].get_offsets(), fig.axes[7].collections[1].get_offsets()
    x, _ = warped_model.flow.inverse(to_device(bottom_first, dtype=numpy.float32))
    numpy.testing.assert_allclose(bottom_last, to_numpy(x), atol=1e-4)


def test_plot_loss_writes_png_with_entropy_line(tmp_path):
    history = {"step": list(range(0, 1000, 25)), "loss": list(3.0 - numpy.linspace(0, 0.6, 40)), "seconds": 1.0}
    fig = viz.plot_loss(history, path=tmp_path / "loss.png", entropy=2.3936)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "entropy H(p) = 2.394" in labels
    assert_png(tmp_path / "loss.png")


def test_plot_loss_rejects_empty_history():
    with pytest.raises(ValueError, match="no logged steps"):
        viz.plot_loss({"step": [], "loss": []})


def test_save_figure_creates_folders_and_returns_path(warped_model, tmp_path):
    fig = viz.plot_samples(warped_model, get_toy("moons"), n=100)
    path = tmp_path / "a" / "b" / "fig.png"
    assert viz.save_figure(fig, path) == path
    assert_png(path)


# ---------------------------------------------------------------- animation


def test_animate_warping_writes_gif_with_expected_frames(warped_model, tmp_path):
    path = tmp_path / "anim" / "w.gif"
    n = viz.animate_warping(
        warped_model, get_toy("moons"), path, frames_per_layer=2, hold=2, n_points=100, n_lines=5, dpi=30
    )
    assert n == 2 * (2 + 3 * 2)  # two holds and 3 layers crossed twice
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == n  # every frame differs, so none was merged
        assert gif.size == (round(5.4 * 30), round(6.0 * 30))


def test_animate_warping_with_density_heatmap(warped_model, tmp_path):
    n = viz.animate_warping(
        warped_model,
        get_toy("moons"),
        tmp_path / "d.gif",
        frames_per_layer=1,
        hold=1,
        n_points=50,
        density=True,
        dpi=30,
    )
    with Image.open(tmp_path / "d.gif") as gif:
        assert gif.n_frames == n == 8


def test_animate_warping_rejects_zero_frames(warped_model, tmp_path):
    with pytest.raises(ValueError, match="frames_per_layer must be a positive integer"):
        viz.animate_warping(warped_model, get_toy("moons"), tmp_path / "x.gif", frames_per_layer=0)


def test_tile_images_places_each_image_with_nan_gaps():
    images = numpy.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3) / 30
    out = viz.tile_images(images, n_cols=2)
    assert out.shape == (3 * 3 - 1, 2 * 4 - 1)  # 3 rows of (2 + gap), 2 columns of (3 + gap), minus the last gaps
    numpy.testing.assert_array_equal(out[3:5, 4:7], images[3])  # row 1, column 1
    assert numpy.isnan(out[2]).all() and numpy.isnan(out[:, 3]).all()  # the gaps
    assert numpy.isnan(out[6:8, 4:7]).all()  # no sixth image
