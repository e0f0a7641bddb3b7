"""Property-based tests (hypothesis) of every invertible layer, over random shapes, masks,
parameter values and inputs:

    finite in, finite out (both directions, log-dets included);
    inverse(forward(x)) == x;
    logdet of the forward at x == -(logdet of the inverse at z = forward(x)).

Each property runs 100 examples, float64, small shapes, derandomized (the
same examples on every run: a failure is reproducible, never flaky) and
without the example database (nothing written to the repository). The
examples are drawn on the host and moved to the default backend
(MINFLOW_BACKEND), where the layers live.
"""

import numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minflow.backend import make_rng, to_device, to_numpy
from minflow.flows import (
    IAF,
    ActNorm,
    AdditiveCoupling,
    Affine,
    AffineCoupling,
    BatchNorm,
    Coupling,
    FactorOut,
    Flow,
    GlowStep,
    ImageAffineCoupling,
    Inverse,
    InvertibleLinear,
    InvertibleLinearLU,
    Logit,
    MaskedAutoregressive,
    Permutation,
    Planar,
    Radial,
    RationalQuadraticSpline,
    Reverse,
    Squeeze,
    channel_mask,
    checkerboard_mask,
)
from minflow.flows.image_additive_coupling import ImageAdditiveCoupling

F64 = numpy.float64
PROPERTY = settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

seeds = st.integers(0, 2**32 - 1)
scales = st.floats(0.05, 2.0)  # standard deviation of the random parameters
values = st.floats(-8.0, 8.0, allow_nan=False, allow_infinity=False)


def _randomize(layer, seed, scale):
    rng = numpy.random.default_rng(seed)
    for p in layer.params.values():
        p[...] = to_device(scale * rng.standard_normal(p.shape))
    return layer


def _max_abs(a):
    return float(abs(a).max()) if a.size else 0.0


def assert_bijection(layer, x, tol=1e-8):
    """Finite outputs, the round trip, and logdet_forward = -logdet_inverse, relative to the sizes involved."""
    n = x.shape[0]
    z, logdet = layer.forward(x)
    assert z.dtype == F64 and logdet.shape == (n,)
    assert bool(numpy.isfinite(z).all()) and bool(numpy.isfinite(logdet).all())
    x_back, logdet_inv = layer.inverse(z)
    assert x_back.shape == x.shape and bool(numpy.isfinite(x_back).all()) and bool(numpy.isfinite(logdet_inv).all())
    assert _max_abs(x_back - x) <= tol * (1 + _max_abs(x) + _max_abs(z)), _max_abs(x_back - x)
    assert _max_abs(logdet + logdet_inv) <= tol * (1 + _max_abs(logdet)), _max_abs(logdet + logdet_inv)


@st.composite
def vectors(draw, min_dim=2, max_dim=5, elements=values):
    d = draw(st.integers(min_dim, max_dim))
    n = draw(st.integers(1, 6))
    return to_device(draw(hnp.arrays(F64, (n, d), elements=elements)))


@st.composite
def masks(draw, d):
    """A boolean (d,) mask that copies at least one coordinate and transforms at least one."""
    order = draw(st.permutations(range(d)))
    k = draw(st.integers(1, d - 1))
    mask = numpy.zeros(d, dtype=bool)
    mask[list(order[:k])] = True
    return mask


@st.composite
def images(draw, channels=(1, 2, 4), sizes=(2, 4)):
    c = draw(st.sampled_from(channels))
    h, w = draw(st.sampled_from(sizes)), draw(st.sampled_from(sizes))
    n = draw(st.integers(1, 3))
    return to_device(draw(hnp.arrays(F64, (n, c, h, w), elements=values)))


# -- vector layers ---------------------------------------------------------------------


@PROPERTY
@given(st.data(), seeds, scales, st.booleans())
def test_affine_coupling_properties(data, seed, scale, learnable_scale):
    x = data.draw(vectors())
    mask = data.draw(masks(x.shape[1]))
    layer = AffineCoupling(x.shape[1], mask, hidden=(5,), learnable_scale=learnable_scale, dtype=F64, rng=make_rng(0))
    assert_bijection(_randomize(layer, seed, scale), x)


@PROPERTY
@given(st.data(), seeds, scales)
def test_additive_coupling_properties(data, seed, scale):
    x = data.draw(vectors())
    layer = AdditiveCoupling(x.shape[1], data.draw(masks(x.shape[1])), hidden=(5,), dtype=F64, rng=make_rng(0))
    _randomize(layer, seed, scale)
    assert_bijection(layer, x)
    assert not layer.forward(x)[1].any()  # volume preserving: log-det exactly 0


@PROPERTY
@given(st.data(), st.booleans())
def test_permutation_and_reverse_properties(data, on_images):
    x = data.draw(images(channels=(2, 3, 4))) if on_images else data.draw(vectors(min_dim=1))
    perm = data.draw(st.permutations(range(x.shape[1])))
    for layer in (Permutation(perm), Reverse(x.shape[1])):
        assert_bijection(layer, x, tol=0.0)  # a permutation moves numbers, it rounds nothing
        assert not layer.forward(x)[1].any()


@PROPERTY
@given(st.data(), seeds, scales)
def test_planar_properties(data, seed, scale):
    x = data.draw(vectors(min_dim=1, max_dim=4))
    layer = _randomize(Planar(x.shape[1], dtype=F64, rng=make_rng(0)), seed, scale)
    assert_bijection(layer, x, tol=1e-7)  # forward is a numerical solve (tolerance 1e-12, relative)


@PROPERTY
@given(st.data(), seeds, scales)
def test_radial_properties(data, seed, scale):
    x = data.draw(vectors(min_dim=1, max_dim=4))
    layer = _randomize(Radial(x.shape[1], dtype=F64, rng=make_rng(0)), seed, scale)
    assert_bijection(layer, x)


@PROPERTY
@given(st.data(), seeds, scales, st.booleans())
def test_actnorm_properties(data, seed, scale, on_images):
    x = data.draw(images()) if on_images else data.draw(vectors(min_dim=1))
    layer = ActNorm(x.shape[1], data_init=False, dtype=F64)
    assert_bijection(_randomize(layer, seed, scale), x)
    fresh = ActNorm(x.shape[1], dtype=F64)  # data-dependent initialisation from this very batch
    assert_bijection(fresh, x, tol=1e-6)  # a constant channel gets scale 1 / sqrt(eps) = 1e4


@PROPERTY
@given(st.data(), seeds, scales, st.booleans())
def test_batch_norm_properties(data, seed, scale, training):
    x = data.draw(vectors(min_dim=1))
    layer = _randomize(BatchNorm(x.shape[1], dtype=F64), seed, scale).train(training)
    assert_bijection(layer, x, tol=1e-6)  # eps = 1e-5: a constant feature is scaled by up to 316


@PROPERTY
@given(st.data(), seeds, st.booleans(), st.booleans())
def test_invertible_linear_properties(data, seed, lu, on_images):
    x = data.draw(images()) if on_images else data.draw(vectors(min_dim=1))
    rng = numpy.random.default_rng(seed)
    c = x.shape[1]
    # a random matrix with singular values in [0.1, 10]: invertible, moderately conditioned
    q1, q2 = numpy.linalg.qr(rng.standard_normal((c, c)))[0], numpy.linalg.qr(rng.standard_normal((c, c)))[0]
    matrix = q1 @ numpy.diag(10 ** rng.uniform(-1, 1, c)) @ q2
    layer = (InvertibleLinearLU if lu else InvertibleLinear).from_matrix(matrix, dtype=F64)
    assert_bijection(layer, x)
    spatial = x[0, 0].size
    logdet = to_numpy(layer.forward(x)[1])
    numpy.testing.assert_allclose(logdet, spatial * numpy.linalg.slogdet(matrix)[1], rtol=1e-9, atol=1e-9)


@PROPERTY
@given(st.data(), seeds, scales, st.sampled_from(["affine", "additive"]), st.sampled_from(["lu", "plain", "reverse"]))
def test_glow_step_for_vectors_properties(data, seed, scale, coupling, mixing):
    x = data.draw(vectors())
    layer = GlowStep.for_vectors(x.shape[1], hidden=(5,), coupling=coupling, mixing=mixing, dtype=F64, rng=make_rng(0))
    for name, p in layer.params.items():
        if not name.startswith("mixing"):  # keep the mixing matrix its well-conditioned start
            p[...] = to_device(scale * numpy.random.default_rng(seed).standard_normal(p.shape))
    layer.actnorm.forward(x)  # set up its data-dependent initialisation first
    assert_bijection(layer, x, tol=1e-6)


@PROPERTY
@given(st.data(), seeds, scales)
def test_flow_of_mixed_layers_and_its_inverse_properties(data, seed, scale):
    x = data.draw(vectors(min_dim=2, max_dim=4))
    d = x.shape[1]
    layers = [
        AffineCoupling(d, data.draw(masks(d)), hidden=(4,), dtype=F64, rng=make_rng(0)),
        Planar(d, dtype=F64, rng=make_rng(0)),
        Permutation(data.draw(st.permutations(range(d)))),
        AdditiveCoupling(d, data.draw(masks(d)), hidden=(4,), dtype=F64, rng=make_rng(0)),
        Radial(d, dtype=F64, rng=make_rng(0)),
    ]
    flow = _randomize(Flow(layers), seed, min(scale, 0.7))
    assert_bijection(flow, x, tol=1e-7)
    assert_bijection(Inverse(flow), flow.forward(x)[0], tol=1e-7)


# -- image layers --------------------------------------------------------------------


@PROPERTY
@given(st.data(), seeds, scales, st.booleans())
def test_image_affine_coupling_properties(data, seed, scale, checkerboard):
    x = data.draw(images(channels=(2, 4)))
    _, c, h, w = x.shape
    mask = (
        checkerboard_mask(h, w, data.draw(st.integers(0, 1)))
        if checkerboard
        else channel_mask(c, data.draw(st.booleans()))
    )
    layer = ImageAffineCoupling(c, mask, hidden=4, n_blocks=1, dtype=F64, rng=make_rng(0))
    assert_bijection(_randomize(layer, seed, scale), x)


@PROPERTY
@given(st.data(), seeds, scales)
def test_image_additive_coupling_properties(data, seed, scale):
    x = data.draw(images(channels=(2, 4)))
    layer = ImageAdditiveCoupling(
        x.shape[1], channel_mask(x.shape[1], data.draw(st.booleans())), hidden=4, n_blocks=1, dtype=F64, rng=make_rng(0)
    )
    assert_bijection(_randomize(layer, seed, scale), x)


@PROPERTY
@given(st.data())
def test_squeeze_properties(data):
    x = data.draw(images())
    layer = Squeeze()
    assert_bijection(layer, x, tol=0.0)
    z = layer.forward(x)[0]
    assert z.shape == (x.shape[0], 4 * x.shape[1], x.shape[2] // 2, x.shape[3] // 2)
    assert sorted(to_numpy(z).ravel()) == sorted(to_numpy(x).ravel())  # the same numbers, moved


@PROPERTY
@given(st.data(), seeds, scales)
def test_factor_out_properties(data, seed, scale):
    x = data.draw(images(channels=(4,)))
    inner = ImageAffineCoupling(2, channel_mask(2, True), hidden=4, n_blocks=1, dtype=F64, rng=make_rng(0))
    layer = _randomize(FactorOut(inner, keep=2), seed, scale)
    assert_bijection(layer, x)
    numpy.testing.assert_array_equal(to_numpy(layer.forward(x)[0][:, 2:]), to_numpy(x[:, 2:]))  # factored out unchanged


@PROPERTY
@given(st.data(), st.floats(0.0, 0.45))
def test_logit_properties(data, alpha):
    n, d = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    v = to_device(data.draw(hnp.arrays(F64, (n, d), elements=st.floats(0.0, 1.0))))  # pixels at 0 and 1 included
    layer = Logit(alpha=max(alpha, 1e-3))
    assert_bijection(layer, v, tol=1e-9)


# -- spline and autoregressive layers ---------------------------------------------------

# A spline's inverse is as ill-conditioned as its flattest bin is flat (error ~ eps |y| / (dy/dx)); raw
# parameters of standard deviation up to 0.7 keep slopes above ~1e-6, where the round trip holds to 1e-8.
spline_scales = st.floats(0.05, 0.7)


@PROPERTY
@given(st.data(), seeds, spline_scales)
def test_spline_coupling_properties(data, seed, scale):
    x = data.draw(vectors())
    transformer = RationalQuadraticSpline(n_bins=data.draw(st.integers(2, 6)), bound=data.draw(st.floats(0.5, 6.0)))
    layer = Coupling.for_vectors(
        x.shape[1], data.draw(masks(x.shape[1])), transformer, hidden=(5,), dtype=F64, rng=make_rng(0)
    )
    assert_bijection(_randomize(layer, seed, scale), x)


@PROPERTY
@given(st.data(), seeds, spline_scales, st.booleans())
def test_image_spline_coupling_properties(data, seed, scale, checkerboard):
    x = data.draw(images(channels=(2, 4)))
    c, h, w = x.shape[1:]
    mask = checkerboard_mask(h, w, data.draw(st.integers(0, 1))) if checkerboard else channel_mask(c)
    layer = Coupling.for_images(
        c, mask, RationalQuadraticSpline(4, 3.0), hidden=3, n_blocks=1, dtype=F64, rng=make_rng(0)
    )
    assert_bijection(_randomize(layer, seed, scale), x)


@PROPERTY
@given(
    st.data(),
    seeds,
    spline_scales,
    st.sampled_from(["affine", "spline"]),
    st.sampled_from(["natural", "reversed", "random"]),
)
def test_autoregressive_properties(data, seed, scale, kind, order):
    x = data.draw(vectors(min_dim=1))
    transformer = Affine() if kind == "affine" else RationalQuadraticSpline(4, 3.0)
    cls = data.draw(st.sampled_from([MaskedAutoregressive, IAF]))
    layer = cls(x.shape[1], transformer, hidden=(6,), order=order, dtype=F64, rng=make_rng(0))
    assert_bijection(_randomize(layer, seed, scale), x)
