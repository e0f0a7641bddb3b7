"""Tests for minflow/flows/glow_step.py: ActNorm -> channel mixing -> coupling, on vectors and images."""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.flows import AffineCoupling, Flow, Permutation, Reverse, half_mask
from minflow.flows.actnorm import ActNorm
from minflow.flows.glow_step import MIXINGS, GlowStep, make_mixing
from minflow.flows.image_coupling import ImageAffineCoupling
from minflow.flows.image_masks import channel_mask, checkerboard_mask
from minflow.flows.invertible_linear import InvertibleLinear, InvertibleLinearLU


def make_vector_step(mixing, coupling="affine"):
    def make(dtype):
        step = GlowStep.for_vectors(4, hidden=(8,), coupling=coupling, mixing=mixing, dtype=dtype, rng=make_rng(0))
        return randomize_params(step, numpy.random.default_rng(1), scale=0.4)

    return make


def make_image_step(mask_kind, mixing="lu"):
    def make(dtype):
        mask = channel_mask(4) if mask_kind == "channel" else checkerboard_mask(3, 3, 1)
        coupling = ImageAffineCoupling(4, mask, hidden=3, n_blocks=1, dtype=dtype, rng=make_rng(0))
        step = GlowStep(4, coupling, mixing=mixing, dtype=dtype, rng=make_rng(0))
        return randomize_params(step, numpy.random.default_rng(1), scale=0.4)

    return make


@pytest.mark.parametrize("mixing", MIXINGS)
@pytest.mark.parametrize("coupling", ["affine", "additive"])
def test_glow_step_vectors_passes_all_checks(mixing, coupling, xp, rng):
    # gradients of the input and of every parameter of the three layers, both directions;
    # log-det vs Jacobian; round trips; dtypes
    assert_layer_passes_all_checks(make_vector_step(mixing, coupling), rng.standard_normal((5, 4)) + 1.0, xp)


@pytest.mark.parametrize("mask_kind", ["channel", "checkerboard"])
def test_glow_step_images_passes_all_checks(mask_kind, xp, rng):
    assert_layer_passes_all_checks(make_image_step(mask_kind), rng.standard_normal((2, 4, 3, 3)) + 1.0, xp)


def test_glow_step_images_plain_mixing_passes_all_checks(xp, rng):
    assert_layer_passes_all_checks(make_image_step("channel", "plain"), rng.standard_normal((2, 4, 3, 3)), xp)


def test_glow_step_is_actnorm_then_mixing_then_coupling(rng):
    step = make_vector_step("lu")(numpy.float64)
    x = to_device(rng.standard_normal((6, 4)))  # on the step's (default) backend
    z, logdet = step.forward(x)
    # the same three layers composed by hand, in that order (actnorm is initialised by now)
    z_hand, logdet_hand = Flow([step.actnorm, step.mixing, step.coupling]).forward(x)
    numpy.testing.assert_array_equal(to_numpy(z), to_numpy(z_hand))
    numpy.testing.assert_array_equal(to_numpy(logdet), to_numpy(logdet_hand))
    h1, _ = step.actnorm.forward(x)
    h2, _ = step.mixing.forward(h1)
    numpy.testing.assert_allclose(to_numpy(h2), to_numpy(h1 @ step.mixing.matrix().T), rtol=1e-13)
    assert [type(layer) for layer in step.layers] == [ActNorm, InvertibleLinearLU, AffineCoupling]


def test_glow_step_initializes_actnorm_on_first_batch(rng):
    step = GlowStep.for_vectors(3, hidden=(8,), dtype=numpy.float64, rng=make_rng(0))
    x = to_device(rng.standard_normal((50, 3)) * [0.2, 3.0, 1.0] + [5.0, -2.0, 0.0])
    step.forward(x)
    h = to_numpy(step.actnorm.forward(x)[0])
    numpy.testing.assert_allclose(h.mean(axis=0), 0.0, atol=1e-6)
    numpy.testing.assert_allclose(h.std(axis=0), 1.0, atol=1e-6)
    assert "actnorm.initialized" in step.buffers()


def test_glow_step_parameter_names_say_the_layer():
    names = set(GlowStep.for_vectors(2, hidden=(4,), rng=make_rng(0)).params)
    assert {"actnorm.log_scale", "actnorm.bias", "mixing.L", "mixing.U", "mixing.log_s"} <= names
    assert any(name.startswith("coupling.net.") for name in names)
    assert not any(
        name.startswith("actnorm")
        for name in GlowStep.for_vectors(2, hidden=(4,), actnorm=False, rng=make_rng(0)).params
    )


def test_make_mixing_builds_each_kind():
    assert isinstance(make_mixing(4, "lu", rng=make_rng(0)), InvertibleLinearLU)
    assert isinstance(make_mixing(4, "plain", rng=make_rng(0)), InvertibleLinear)
    assert isinstance(make_mixing(4, "reverse", rng=make_rng(0)), Reverse)
    shuffle = make_mixing(8, "shuffle", rng=make_rng(3))
    assert isinstance(shuffle, Permutation) and sorted(shuffle.perm.tolist()) == list(range(8))
    assert shuffle.perm.tolist() != list(range(8))
    assert shuffle.perm.tolist() == make_mixing(8, "shuffle", rng=make_rng(3)).perm.tolist()  # seeded


def test_glow_step_rejects_unknown_options():
    with pytest.raises(ValueError, match="mixing must be one of"):
        GlowStep.for_vectors(2, mixing="rotate", rng=make_rng(0))
    with pytest.raises(ValueError, match="coupling must be"):
        GlowStep.for_vectors(2, coupling="spline", rng=make_rng(0))
    with pytest.raises(TypeError, match="coupling Bijection"):
        GlowStep(2, half_mask(2), rng=make_rng(0))
