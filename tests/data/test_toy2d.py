"""Tests for minflow/data/toy2d.py: the 2D toy densities of docs/reference-problems.md section 1.

Each exact log_prob integrates to 1 on a grid over its bounding box; each
sampler's 20x20 histogram matches the bin masses of exp(log_prob) by a
chi-square test that a blurred sampler fails; the Monte-Carlo entropies match
the table of section 4.
"""

import functools
import math

import numpy
import pytest

from minflow import backend
from minflow.data import toy2d

EXACT = ["gaussians8", "checkerboard", "rings", "moons"]
SAMPLE_ONLY = ["pinwheel", "spirals"]
# Grid cells per axis over the bounding box, a multiple of N_BINS: cell widths
# 0.01 (gaussians8, checkerboard, rings) and 0.03 (moons, whose quadrature
# density costs 1024 terms per point), all well below the smallest scale.
GRID_CELLS = {"gaussians8": 700, "checkerboard": 400, "rings": 600, "moons": 300}
N_BINS = 20
N_SAMPLES = 2 * 10**5


@functools.cache
def grid_masses(name):
    """Mass exp(log p) * h^2 of each grid cell (midpoint rule), (cells, cells), x0 first."""
    lo, hi = toy2d.bounding_box(name)
    cells = GRID_CELLS[name]
    h = (hi - lo) / cells
    c = lo + h * (numpy.arange(cells) + 0.5)  # (cells,) midpoints, never 0 or an edge
    x0, x1 = numpy.meshgrid(c, c, indexing="ij")
    x = numpy.stack([x0.ravel(), x1.ravel()], axis=1)  # (cells^2, 2)
    logp = toy2d.get_toy(name).log_prob(x)  # (cells^2,)
    return (numpy.exp(logp) * h * h).reshape(cells, cells)


def bin_masses(name):
    """Mass of each of the N_BINS x N_BINS histogram bins, summed from the grid."""
    cells = GRID_CELLS[name]
    k = cells // N_BINS
    return grid_masses(name).reshape(N_BINS, k, N_BINS, k).sum(axis=(1, 3))


def chi_square(name, x):
    """Chi-square of the 20x20 histogram of x against the bin masses; (chi2, df).

    Bins expecting fewer than 5 counts are pooled together with everything
    that falls outside the box.
    """
    lo, hi = toy2d.bounding_box(name)
    edges = numpy.linspace(lo, hi, N_BINS + 1)
    x = backend.to_numpy(x)
    observed, _, _ = numpy.histogram2d(x[:, 0], x[:, 1], bins=[edges, edges])
    expected = len(x) * bin_masses(name)
    big = expected >= 5
    obs = numpy.append(observed[big], len(x) - observed[big].sum())
    exp = numpy.append(expected[big], max(len(x) - expected[big].sum(), 1e-12))
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    return chi2, len(obs) - 1


def chi_square_passes(chi2, df):
    """Accept at df + 5 standard deviations of the chi-square(df) distribution."""
    return chi2 < df + 5 * math.sqrt(2 * df)


@pytest.fixture(params=["numpy", "cupy"])
def xp(request):
    if request.param == "numpy":
        return numpy
    try:
        return backend._import_cupy()
    except RuntimeError as err:
        pytest.skip(f"CuPy backend unavailable: {err}")


# ------------------------------------------------------------- normalisation


@pytest.mark.parametrize("name", EXACT)
def test_toy2d_log_prob_integrates_to_one(name):
    total = grid_masses(name).sum()
    tol = 1e-12 if name == "checkerboard" else 1e-3  # checkerboard: exact count
    assert abs(total - 1.0) < tol, f"{name}: grid integral {total:.6f}"


def test_toy2d_rings_integrates_to_one_in_polar_coordinates():
    # Independent of the Cartesian grid: integral of p(r, theta) * r dr dtheta.
    r = numpy.linspace(1e-4, 3.5, 20001)
    theta = 0.3  # the density does not depend on the angle
    x = numpy.stack([r * numpy.cos(theta), r * numpy.sin(theta)], axis=1)
    p_r = numpy.exp(toy2d.log_prob_rings(x)) * 2 * math.pi * r
    assert abs(numpy.trapezoid(p_r, r) - 1.0) < 1e-6


def test_toy2d_checkerboard_log_prob_is_log_eighth_inside_and_minus_inf_outside():
    x = numpy.array([[-1.5, -1.5], [0.5, 0.5], [-0.5, -1.5], [2.5, 0.0], [0.0, 0.0], [2.0, 2.0]])
    logp = toy2d.log_prob_checkerboard(x)
    expected = [math.log(1 / 8), math.log(1 / 8), -math.inf, -math.inf]
    numpy.testing.assert_array_equal(logp[:4], expected)
    # Squares are closed: a shared corner and the outer corner (2, 2) belong.
    numpy.testing.assert_array_equal(logp[4:], [math.log(1 / 8)] * 2)


def test_toy2d_checkerboard_float32_samples_all_have_density():
    # float32 rounding can put a sample exactly on an edge; it must not get -inf.
    x = toy2d.sample_checkerboard(10**6, backend.make_rng(3, numpy), numpy.float32)
    assert numpy.all(toy2d.log_prob_checkerboard(x) == numpy.float32(math.log(1 / 8)))


@pytest.mark.parametrize("name", ["gaussians8", "rings", "moons"])
def test_toy2d_log_prob_is_finite_far_from_the_mass(name):
    # Computed in log space: far points get a large negative, not -inf.
    x = numpy.array([[20.0, 0.0], [-15.0, 12.0], [0.0, -30.0]])
    logp = toy2d.get_toy(name).log_prob(x)
    assert numpy.all(numpy.isfinite(logp)) and numpy.all(logp < -100)


def test_toy2d_gaussians8_log_prob_matches_direct_sum():
    rng = numpy.random.default_rng(0)
    x = rng.uniform(-3, 3, size=(50, 2))
    k = numpy.arange(8)
    means = 2 * numpy.stack([numpy.cos(k * numpy.pi / 4), numpy.sin(k * numpy.pi / 4)], 1)
    d2 = ((x[:, None, :] - means[None]) ** 2).sum(-1)
    p = (numpy.exp(-0.5 * d2 / 0.25**2) / (2 * numpy.pi * 0.25**2)).mean(1)
    numpy.testing.assert_allclose(toy2d.log_prob_gaussians8(x), numpy.log(p), rtol=1e-12)


# ------------------------------------------------------------------ samplers


@pytest.mark.parametrize("name", EXACT)
def test_toy2d_sampler_histogram_matches_density(name):
    x = toy2d.get_toy(name).sample(N_SAMPLES, backend.make_rng(1, numpy), numpy.float64)
    chi2, df = chi_square(name, x)
    assert chi_square_passes(chi2, df), f"{name}: chi2 {chi2:.1f} on {df} dof"


@pytest.mark.parametrize("name", EXACT)
def test_toy2d_histogram_check_rejects_a_blurred_sampler(name):
    # The check has teeth: the right sampler plus N(0, 0.1^2) noise must fail.
    rng = backend.make_rng(1, numpy)
    x = toy2d.get_toy(name).sample(N_SAMPLES, rng, numpy.float64)
    x = x + 0.1 * rng.standard_normal(size=x.shape)
    chi2, df = chi_square(name, x)
    assert not chi_square_passes(chi2, df), f"{name}: chi2 {chi2:.1f} on {df} dof"


@pytest.mark.parametrize("name", EXACT + SAMPLE_ONLY)
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_toy2d_sample_shape_dtype_and_box(name, dtype):
    x = toy2d.get_toy(name).sample(5000, backend.make_rng(0, numpy), dtype)
    assert x.shape == (5000, 2) and x.dtype == dtype
    lo, hi = toy2d.bounding_box(name)
    assert numpy.all((x >= lo) & (x <= hi))


@pytest.mark.parametrize("name", EXACT + SAMPLE_ONLY)
def test_toy2d_sample_reproducible_from_seed(name):
    toy = toy2d.get_toy(name)
    a = toy.sample(1000, backend.make_rng(7, numpy))
    b = toy.sample(1000, backend.make_rng(7, numpy))
    c = toy.sample(1000, backend.make_rng(8, numpy))
    numpy.testing.assert_array_equal(a, b)
    assert not numpy.array_equal(a, c)


@pytest.mark.parametrize("name", EXACT)
def test_toy2d_log_prob_keeps_dtype_and_float32_agrees(name):
    toy = toy2d.get_toy(name)
    x = toy.sample(2000, backend.make_rng(2, numpy), numpy.float64)
    lp64 = toy.log_prob(x)
    lp32 = toy.log_prob(x.astype(numpy.float32))
    assert lp64.shape == (2000,) and lp64.dtype == numpy.float64
    assert lp32.shape == (2000,) and lp32.dtype == numpy.float32
    numpy.testing.assert_allclose(lp32, lp64, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", EXACT)
def test_toy2d_runs_on_each_backend(name, xp):
    toy = toy2d.get_toy(name)
    x = toy.sample(1000, backend.make_rng(0, xp), numpy.float32)
    logp = toy.log_prob(x)
    assert backend.get_array_module(x) is xp and backend.get_array_module(logp) is xp
    assert x.shape == (1000, 2) and logp.shape == (1000,) and logp.dtype == numpy.float32
    host = toy.log_prob(backend.to_numpy(x))
    numpy.testing.assert_allclose(backend.to_numpy(logp), host, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ entropies


@pytest.mark.parametrize("name", EXACT)
def test_toy2d_monte_carlo_entropy_matches_table(name):
    h = toy2d.monte_carlo_entropy(name, n=N_SAMPLES, seed=1, xp=numpy)
    assert abs(h - toy2d.ENTROPY[name]) < 0.01, f"{name}: {h:.4f} vs {toy2d.ENTROPY[name]}"
    assert toy2d.get_toy(name).entropy == toy2d.ENTROPY[name]


def test_toy2d_entropy_table_values():
    assert toy2d.ENTROPY["checkerboard"] == pytest.approx(math.log(8), abs=1e-15)
    # The no-overlap formula for gaussians8 is 0.006 too high (section 1).
    no_overlap = math.log(8) + math.log(2 * math.pi * math.e * 0.25**2)
    assert no_overlap - toy2d.ENTROPY["gaussians8"] > 0.005


# ------------------------------------------------------------------ registry


def test_toy2d_get_toy_rejects_unknown_name():
    with pytest.raises(ValueError, match="Unknown dataset 'foo'; expected one of: ") as err:
        toy2d.get_toy("foo")
    for name in EXACT + SAMPLE_ONLY:
        assert name in str(err.value)


@pytest.mark.parametrize("name", SAMPLE_ONLY)
def test_toy2d_sample_only_has_no_exact_density(name):
    toy = toy2d.get_toy(name)
    assert not toy.has_log_prob and toy.entropy is None
    with pytest.raises(ValueError, match="no exact density"):
        toy.log_prob(numpy.zeros((3, 2)))
    with pytest.raises(NotImplementedError, match="no exact density"):
        toy2d.monte_carlo_entropy(name, n=10)


def test_toy2d_registry_lists_every_density():
    assert list(toy2d.TOY_DENSITIES) == EXACT + SAMPLE_ONLY
    assert all(toy2d.get_toy(n).has_log_prob for n in EXACT)


@pytest.mark.parametrize("name", EXACT)
def test_toy2d_log_prob_rejects_wrong_shape(name):
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 2\); got \(4, 3\)"):
        toy2d.get_toy(name).log_prob(numpy.zeros((4, 3)))
