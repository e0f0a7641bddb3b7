"""Tests for minflow/zoo/glow.py: the two-level Glow on 8x8 digits and Glow steps in 2D.

Models live on the default backend (MINFLOW_BACKEND): their inputs go there
with ``to_device`` and their results come back with ``to_numpy``.
"""

import numpy
import pytest
from helpers import randomize_params

from minflow.backend import to_device, to_numpy
from minflow.data.digits import load_digits
from minflow.flows import Flow, Inverse
from minflow.flows.actnorm import ActNorm
from minflow.flows.factor_out import FactorOut
from minflow.flows.glow_step import GlowStep
from minflow.flows.image_additive_coupling import ImageAdditiveCoupling
from minflow.flows.image_coupling import ImageAffineCoupling
from minflow.flows.invertible_linear import InvertibleLinear, InvertibleLinearLU
from minflow.flows.permutation import Permutation, Reverse
from minflow.flows.preprocessing import Logit, dequantize
from minflow.flows.squeeze import Squeeze
from minflow.gradcheck import brute_force_logdet, check_gradients
from minflow.zoo.glow import glow_2d, glow_digits

MIXING_TYPES = {"lu": InvertibleLinearLU, "plain": InvertibleLinear, "reverse": Reverse, "shuffle": Permutation}


def tiny(dtype=numpy.float64, **kwargs):
    """A 1x4x4 Glow, one step per level, every parameter randomised."""
    model = glow_digits(steps=1, hidden=3, n_blocks=1, size=4, dtype=dtype, **kwargs)
    return randomize_params(model, numpy.random.default_rng(0), scale=0.3)


def test_glow_digits_layers_follow_the_docstring():
    model = glow_digits(steps=(2, 3))
    flow = model.flow
    assert isinstance(flow[0], Logit) and flow[0].alpha == 0.05 and isinstance(flow[1], Squeeze)
    assert [type(layer) for layer in flow.layers[2:4]] == [GlowStep, GlowStep]
    split = flow[4]
    assert isinstance(split, FactorOut) and split.keep == 2 and len(flow) == 5
    inner = split.inner.layers
    assert isinstance(inner[0], Squeeze) and isinstance(inner[-1], Inverse) and len(inner) == 5
    for step, channels in [(flow[2], 4), (inner[1], 8)]:
        assert isinstance(step.actnorm, ActNorm) and isinstance(step.mixing, InvertibleLinearLU)
        assert isinstance(step.coupling, ImageAffineCoupling) and step.coupling.channels == channels
    assert model.event_shape == (1, 8, 8) and model.base.event_shape == (4, 4, 4)
    assert glow_digits().num_params() == 317_760  # K = 4 per level, D8 conditioner widths


@pytest.mark.parametrize("mixing", sorted(MIXING_TYPES))
@pytest.mark.parametrize("coupling", ["affine", "additive"])
def test_glow_digits_builds_every_ablation_variant(mixing, coupling):
    model = glow_digits(steps=1, hidden=4, n_blocks=1, mixing=mixing, coupling=coupling)
    step = model.flow[2]
    assert isinstance(step.mixing, MIXING_TYPES[mixing])
    assert isinstance(step.coupling, ImageAffineCoupling if coupling == "affine" else ImageAdditiveCoupling)
    v, _ = dequantize(to_device(load_digits("test")[:20]), 17, numpy.random.default_rng(0))
    z, logdet = model.flow.forward(v)
    assert z.shape == (20, 4, 4, 4) and bool(numpy.isfinite(logdet).all())
    v_back, _ = model.flow.inverse(z)
    assert float(abs(v_back - v).max()) < 1e-4


def test_glow_digits_actnorm_initialises_on_the_first_batch():
    model = glow_digits(steps=2, hidden=8, n_blocks=1)
    v, _ = dequantize(to_device(load_digits("train")[:256]), 17, numpy.random.default_rng(0))
    h, _ = Flow(model.flow.layers[:2]).forward(v)  # logit, squeeze: the input of the first step
    model.log_prob(v)
    a = to_numpy(model.flow[2].actnorm.forward(h)[0])
    numpy.testing.assert_allclose(a.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
    numpy.testing.assert_allclose(a.std(axis=(0, 2, 3)), 1.0, atol=1e-4)
    assert all(value.tolist() == [1.0] for name, value in model.buffers().items() if name.endswith("initialized"))


@pytest.mark.parametrize("coupling", ["affine", "additive"])
def test_glow_digits_tiny_logdet_matches_jacobian(coupling, rng):
    model = tiny(coupling=coupling)
    v = to_device(rng.uniform(0.05, 0.95, size=(3, 1, 4, 4)))
    model.flow.forward(v)  # ActNorm's data-dependent initialisation first
    _, logdet = model.flow.forward(v)
    numpy.testing.assert_allclose(to_numpy(logdet), to_numpy(brute_force_logdet(model.flow.forward, v)), atol=1e-6)


@pytest.mark.parametrize("coupling", ["affine", "additive"])
def test_glow_digits_tiny_gradcheck(coupling, rng):
    # the whole flow, both directions: input and every parameter array (6 random entries each)
    model = tiny(coupling=coupling)
    report = check_gradients(model.flow, to_device(rng.uniform(0.05, 0.95, size=(2, 1, 4, 4))), max_entries=6)
    assert report.ok, report
    assert len(report.rows) == 2 * (1 + len(model.params))


def test_glow_digits_rejects_bad_options():
    with pytest.raises(ValueError, match="mixing must be one of"):
        glow_digits(mixing="swap")
    with pytest.raises(ValueError, match="coupling must be one of"):
        glow_digits(coupling="spline")
    with pytest.raises(ValueError, match="multiple of 4"):
        glow_digits(size=6)
    with pytest.raises(ValueError, match="positive integers"):
        glow_digits(steps=(2, 0))


def test_glow_2d_matches_r2_depth_and_trains(rng):
    from minflow.optim import Adam

    model = glow_2d()
    assert len(model.flow) == 8 and all(isinstance(s.mixing, InvertibleLinearLU) for s in model.flow.layers)
    assert model.num_params() == 35_344 + 8 * (2 + 2 + 4 + 4 + 2)  # R2 + ActNorm 4 + LU (L, U full 2x2, log_s)
    x = to_device((rng.standard_normal((256, 2)) * [2.0, 0.5] + [1.0, -1.0]).astype(numpy.float32))
    first = float(model.nll(x))
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    for _ in range(30):
        model.zero_grads()
        model.nll_and_backward(x)
        optimizer.step()
    assert float(model.nll(x)) < first - 0.05
