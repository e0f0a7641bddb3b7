"""Memory by inversion (``Flow(recompute="invert")``, ``FlowModel.set_recompute``) for every layer kind.

For every kind of tests/layer_registry.py (every Bijection class of
minflow.flows, with its states: ActNorm fresh and initialised, BatchNorm in
training mode with and without a batch seen, and in evaluation mode), in
both directions (maximum likelihood through ``forward``, reverse KL through
``inverse``):

    recompute="invert" gives the cached path's losses, every gradient, the
    input gradient, and the parameters and buffers after two steps, to 1e-10
    relative in float64;
    no backward pass changes a parameter, a buffer or any other state, with
    and without recompute;

and a layer that does not say how to rebuild its input is refused by name.
The property test at the end draws whole flows of these kinds.
"""

import numpy
import pytest
from helpers import QuadraticEnergy, assert_backward_keeps_state, assert_recompute_matches_cached
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from layer_registry import KINDS, NESTED, covered_classes, data_batch, flow_classes, random_flow

from minflow.backend import make_rng
from minflow.distributions import StandardNormal
from minflow.flows import (
    AffineCoupling,
    Bijection,
    Flow,
    ImageAffineCoupling,
    InvertibleLinearLU,
    TarFlowBlock,
    checkerboard_mask,
)
from minflow.flows.base import recompute_problem
from minflow.model import FlowModel
from minflow.nn import CausalTransformer

F64 = numpy.float64
SHAPES = {"vector": (3,), "image": (4, 4, 4), "tokens": (4, 3)}
CASES = [(kind, shape) for kind in KINDS for shape in SHAPES if KINDS[kind].fits(SHAPES[shape], True)]
DIRECTIONS = ("forward", "inverse")


def test_every_bijection_class_of_minflow_flows_has_a_factory():
    missing = sorted(cls.__name__ for cls in flow_classes() - covered_classes())
    assert not missing, (
        f"no factory in tests/layer_registry.py builds {missing}: add one to KINDS, "
        "and the recompute and state tests cover the new layer"
    )
    assert len(flow_classes()) >= 18  # the enumeration finds the layers (a broken walk would find none)


def _neighbour(shape, rng):
    """A stateless layer with parameters whose gradient depends on its input, for either side of a layer."""
    if len(shape) == 1 and shape[0] >= 2:
        layer = AffineCoupling(
            shape[0], [True] + [False] * (shape[0] - 1), hidden=(5,), learnable_scale=True, dtype=F64, rng=make_rng(0)
        )
    elif len(shape) == 3 and shape[1] * shape[2] >= 2:
        layer = ImageAffineCoupling(
            shape[0], checkerboard_mask(shape[1], shape[2]), hidden=3, n_blocks=1, dtype=F64, rng=make_rng(0)
        )
    elif len(shape) == 2:  # tokens (T, D)
        layer = TarFlowBlock(
            CausalTransformer(
                shape[1], 2 * shape[1], shape[0], hidden=4, depth=1, n_heads=1, mlp_ratio=1, dtype=F64, rng=make_rng(7)
            )
        )
    else:
        layer = InvertibleLinearLU(shape[0], dtype=F64, rng=make_rng(0))
    for p in layer.params.values():
        p[...] = 0.3 * rng.standard_normal(p.shape)
    return layer


def _sandwich_builder(kind, shape, seed=0):
    """build() -> FlowModel of [neighbour, layer of ``kind``, neighbour]: each neighbour's gradient reads
    the input the layer's rebuild gives it, in one direction or the other (no neighbour before a logit)."""

    def build():
        rng = numpy.random.default_rng(seed)
        layer, out_shape = KINDS[kind].build(shape, rng)
        before = [] if kind == "logit" else [_neighbour(shape, rng)]
        flow = Flow([*before, layer, _neighbour(out_shape, rng)])
        return FlowModel(flow, StandardNormal(out_shape), event_shape=shape)

    return build


def _data(kind_names, shape, seed=1):
    n = 5 if len(shape) == 1 else 3
    return data_batch(shape, numpy.random.default_rng(seed), n, unit_interval=kind_names[0] == "logit")


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize(("kind", "shape"), CASES)
def test_recompute_matches_cached_path(kind, shape, direction):
    shape = SHAPES[shape]
    assert_recompute_matches_cached(
        _sandwich_builder(kind, shape), direction, _data([kind], shape), QuadraticEnergy(shape)
    )


@pytest.mark.parametrize("recompute", [None, "invert"])
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize(("kind", "shape"), CASES)
def test_backward_changes_no_parameter_buffer_or_state(kind, shape, direction, recompute):
    shape = SHAPES[shape]
    model = _sandwich_builder(kind, shape)().set_recompute(recompute)
    x = _data([kind], shape)
    z = numpy.random.default_rng(2).standard_normal((x.shape[0], *model.base.event_shape))
    assert_backward_keeps_state(model.flow, direction, x if direction == "forward" else z)


def test_recompute_reproduces_the_issue_example():
    """Planar, a fresh ActNorm or a BatchNorm in training mode, Planar, trained by reverse KL."""
    from minflow.backend import make_rng
    from minflow.data.energy import get_energy
    from minflow.flows import ActNorm, BatchNorm, Planar

    for middle in (ActNorm, BatchNorm):

        def build(middle=middle):
            rng = make_rng(5)
            layers = [Planar(2, dtype=F64, rng=rng), middle(2, dtype=F64), Planar(2, dtype=F64, rng=rng)]
            return FlowModel(Flow(layers), StandardNormal((2,)))

        assert_recompute_matches_cached(build, "inverse", numpy.zeros((64, 2)), get_energy("U1"))


# -- a layer that cannot rebuild its input is refused, by name ---------------------------------


class Counter(Bijection):
    """A shift that counts its forward passes: state outside its parameters, and no rebuild."""

    def __init__(self):
        super().__init__()
        self.add_param("b", numpy.ones(2))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x + self._own_params["b"], numpy.zeros(x.shape[0])

    def inverse(self, z):
        return z - self._own_params["b"], numpy.zeros(z.shape[0])


class Shift(Counter):
    stateless = True  # forward's counter is read by nothing: the passes are functions of x and b


def test_flow_recompute_refuses_a_layer_that_does_not_say_how_to_rebuild():
    with pytest.raises(ValueError, match=r"layer 1 \(Counter\) after its forward pass: it does not declare"):
        Flow([Shift(), Counter()], recompute="invert")
    flow = Flow([Shift(), Flow([Shift(), Counter()])])
    with pytest.raises(ValueError, match=r"layer 1\.1 \(Counter\)"):
        flow.recompute = "invert"
    assert flow.recompute is None
    assert recompute_problem(Flow([Shift()])) is None


def test_set_recompute_refuses_before_changing_any_flow():
    inner = Flow([Shift()])
    model = FlowModel(Flow([inner, Counter()]), StandardNormal((2,)))
    with pytest.raises(ValueError, match=r"set_recompute\('invert'\).*layer flow\.1 \(Counter\).*stateless = True"):
        model.set_recompute("invert")
    assert model.flow.recompute is None and inner.recompute is None
    assert model.set_recompute(None).flow.recompute is None  # turning it off needs no rebuild


def test_rebuild_input_of_a_refused_layer_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="Counter cannot rebuild its input after its inverse pass"):
        Counter().rebuild_input(numpy.zeros((1, 2)), "inverse")
    with pytest.raises(ValueError, match="direction must be one of"):
        Shift().rebuild_input(numpy.zeros((1, 2)), "sideways")


# -- random flows of every kind ------------------------------------------------------------------

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def random_flows(draw):
    """(names of the top-level kinds, event shape, seed): 1 to 5 layers of any kinds that fit, data-dependent
    ones anywhere; nested kinds (flows, inverses, factor-outs, Glow steps) draw their own layers from the seed."""
    shape = draw(st.sampled_from([(2,), (3,), (4,), (1, 2, 2), (2, 2, 2), (2, 4, 4), (4, 2, 2)]))
    seed = draw(st.integers(0, 2**31 - 1))
    depth = draw(st.integers(1, 5))
    rng = numpy.random.default_rng(seed)
    names, current = [], shape
    for k in range(depth):
        fitting = sorted(n for n, kind in KINDS.items() if kind.fits(current, k == 0))
        name = draw(st.sampled_from(fitting))
        names.append(name)
        current = KINDS[name].build(current, rng)[1]  # the shape the next layer receives
    return names, shape, seed


@PROPERTY
@given(random_flows(), st.sampled_from(DIRECTIONS))
def test_recompute_matches_cached_path_on_random_flows(drawn, direction):
    names, shape, seed = drawn

    def build():
        layers, out_shape = random_flow(shape, numpy.random.default_rng(seed), len(names), names=names)
        return FlowModel(Flow(layers), StandardNormal(out_shape), event_shape=shape)

    x, energy = _data(names, shape, seed % 1000), QuadraticEnergy(shape, seed)
    compared = assert_recompute_matches_cached(build, direction, x, energy, allow_refusal=True)
    event("compared" if compared else "refused (a saturated logit)")


def test_random_flows_reach_every_kind_and_nesting():
    """The strategy can draw every kind, nested ones included (a kind no shape fits would never be tested)."""
    reachable = {
        n
        for shape in [
            (2,),
            (3,),
            (4,),
            (1, 2, 2),
            (2, 2, 2),
            (2, 4, 4),
            (4, 2, 2),
            (4, 8),
        ]  # (4, 8): (2, 4, 4) patchified
        for first in (True, False)
        for n, kind in KINDS.items()
        if kind.fits(shape, first)
    }
    assert reachable == set(KINDS) and NESTED <= reachable


def test_logit_refuses_to_rebuild_a_saturated_sample_after_an_inverse_pass():
    """After the inverse pass v = sigmoid-like(y), a saturated v no longer determines y: a clear error, not a wrong gradient."""
    from minflow.backend import make_rng
    from minflow.flows import ActNorm, Logit, RecomputeError

    def build():
        actnorm = ActNorm(2, data_init=False, dtype=F64)
        actnorm.params["log_scale"][...] = -3.0  # the inverse scales z by e^3: logits of about +-20
        return FlowModel(Flow([Logit(0.05), actnorm]), StandardNormal((2,)))

    energy = QuadraticEnergy((2,))
    build().reverse_kl_and_backward(energy, 8, make_rng(0))  # the cached path needs no rebuild
    with pytest.raises(RecomputeError, match=r"Logit cannot rebuild its input after its inverse pass: \d+ of 16"):
        build().set_recompute("invert").reverse_kl_and_backward(energy, 8, make_rng(0))
    build().set_recompute("invert").nll_and_backward(numpy.full((8, 2), 0.999))  # after a forward pass: always exact
