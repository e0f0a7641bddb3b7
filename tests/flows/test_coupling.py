"""The coupling skeleton with every transformer, on vectors and on images (feature, channel and checkerboard splits)."""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import make_rng
from minflow.flows import Coupling, Flow, channel_mask, checkerboard_mask
from minflow.flows.transformers import Additive, Affine, RationalQuadraticSpline

TRANSFORMERS = {
    "affine": lambda dtype, shape: Affine(),
    "affine-learnable": lambda dtype, shape: Affine("learnable", scale_shape=shape, dtype=dtype, xp=numpy),
    "additive": lambda dtype, shape: Additive(),
    "spline": lambda dtype, shape: RationalQuadraticSpline(n_bins=4, bound=2.5),
}


@pytest.mark.parametrize("kind", list(TRANSFORMERS))
def test_vector_coupling_with_each_transformer_passes_all_checks(kind, xp):
    mask = numpy.array([True, False, True, False, False])

    def make(dtype):
        layer = Coupling.for_vectors(
            5, mask, TRANSFORMERS[kind](dtype, (3,)), hidden=(6,), dtype=dtype, rng=make_rng(0)
        )
        return randomize_params(layer, numpy.random.default_rng(0), scale=0.4)

    assert_layer_passes_all_checks(make, numpy.random.default_rng(1).standard_normal((4, 5)), xp)


@pytest.mark.parametrize("mask_kind", ["checkerboard", "channel"])
@pytest.mark.parametrize("kind", ["affine", "spline", "additive"])
def test_image_coupling_with_each_transformer_passes_all_checks(kind, mask_kind, xp):
    if kind == "additive" and mask_kind == "checkerboard":
        pytest.skip("an additive checkerboard coupling is the same code path as the affine one")
    mask = checkerboard_mask(4, 4, 1) if mask_kind == "checkerboard" else channel_mask(2)
    n_transformed = 2 if mask_kind == "checkerboard" else 1

    def make(dtype):
        transformer = TRANSFORMERS[kind](dtype, (n_transformed, 1, 1))
        layer = Coupling.for_images(2, mask, transformer, hidden=3, n_blocks=1, dtype=dtype, rng=make_rng(0))
        return randomize_params(layer, numpy.random.default_rng(2), scale=0.15)

    assert_layer_passes_all_checks(make, numpy.random.default_rng(3).standard_normal((2, 2, 4, 4)), xp, max_entries=40)


def test_checkerboard_coupling_leaves_the_copied_pixels_exactly_unchanged():
    mask = checkerboard_mask(4, 4, 0)
    layer = randomize_params(
        Coupling.for_images(
            1, mask, RationalQuadraticSpline(4, 5.0), hidden=3, n_blocks=1, dtype=numpy.float64, rng=make_rng(0)
        ),
        numpy.random.default_rng(4),
    )
    x = numpy.random.default_rng(5).standard_normal((3, 1, 4, 4))
    z, _ = layer.forward(x)
    numpy.testing.assert_array_equal(z[:, :, mask], x[:, :, mask])
    assert numpy.all(z[:, :, ~mask] != x[:, :, ~mask])


@pytest.mark.parametrize("kind", ["affine", "spline"])
def test_coupling_flow_memory_by_inversion_equals_the_cached_path(kind):
    def build():
        layers = [
            Coupling.for_vectors(
                3,
                numpy.arange(3) == k % 3,
                TRANSFORMERS[kind](numpy.float64, (2,)),
                hidden=(5,),
                dtype=numpy.float64,
                rng=make_rng(0),
            )
            for k in range(4)
        ]
        flow = Flow(layers)
        return randomize_params(flow, numpy.random.default_rng(6), scale=0.4)

    x = numpy.random.default_rng(7).standard_normal((6, 3))
    dz = numpy.random.default_rng(8).standard_normal((6, 3))
    dlogdet = numpy.random.default_rng(9).standard_normal(6)
    results = []
    for recompute in (None, "invert"):
        flow = build()
        flow.recompute = recompute
        flow.forward(x)
        dx = flow.backward(dz, dlogdet)
        results.append((dx, {k: g.copy() for k, g in flow.grads.items()}))
    numpy.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-10, atol=1e-12)
    for k in results[0][1]:
        numpy.testing.assert_allclose(results[1][1][k], results[0][1][k], rtol=1e-9, atol=1e-12)


def test_coupling_backward_after_the_other_direction_is_a_clear_error():
    layer = Coupling.for_vectors(2, [True, False], RationalQuadraticSpline(), hidden=(4,), rng=make_rng(0))
    x = numpy.zeros((3, 2), dtype=numpy.float32)
    layer.forward(x)
    layer.inverse(x)
    with pytest.raises(RuntimeError, match=r"backward\(\) needs the cache of its forward pass"):
        layer.backward(x, numpy.zeros(3, dtype=numpy.float32))
