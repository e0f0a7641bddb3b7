"""Tests for the continuous-flow figures of minflow/viz/ode_warping.py: the flow along t, still and animated."""

import numpy
import pytest
from helpers import randomize_params
from PIL import Image

from minflow import viz
from minflow.backend import make_rng
from minflow.continuous import ContinuousFlowModel, VelocityField
from minflow.data.toy2d import get_toy


@pytest.fixture
def model():
    field = VelocityField(2, hidden=(8,), n_frequencies=2, dtype=numpy.float64, rng=make_rng(0))
    return ContinuousFlowModel(randomize_params(field, numpy.random.default_rng(0), scale=0.3), n_steps=6)


def test_plot_ode_warping_panels_are_the_solution_at_their_times(model, tmp_path):
    path = tmp_path / "w.png"
    fig = viz.plot_ode_warping(model, get_toy("moons"), path=path, n_panels=4, n_points=50, n_lines=3, seed=1)
    assert path.exists()
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["t = 0.00", "t = 0.33", "t = 0.67", "t = 1.00"]
    z = model.base.sample(50, make_rng(1), numpy.float64)
    last = axes[-1].collections[1].get_offsets()  # the points of the t = 1 panel
    numpy.testing.assert_allclose(last, model.sample(50, make_rng(1)), atol=1e-12)  # 6 steps: on the grid of 3
    numpy.testing.assert_allclose(axes[0].collections[1].get_offsets(), z)


def test_animate_ode_warping_writes_one_frame_per_solver_step(model, tmp_path):
    path = tmp_path / "a.gif"
    n = viz.animate_ode_warping(model, get_toy("moons"), path, hold=2, n_points=40, n_lines=3, dpi=30)
    assert n == 2 * (2 + 6)
    with Image.open(path) as gif:
        assert gif.n_frames == n


def test_ode_figures_reject_bad_arguments(model, tmp_path):
    with pytest.raises(ValueError, match="n_panels"):
        viz.plot_ode_warping(model, get_toy("moons"), n_panels=1)
    with pytest.raises(ValueError, match="hold must be a positive integer"):
        viz.animate_ode_warping(model, get_toy("moons"), tmp_path / "x.gif", hold=0)
