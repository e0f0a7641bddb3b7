"""A registry of factories, one or more per layer kind of ``minflow.flows``, for the tests that must cover them all.

    layer, out_shape = KINDS["actnorm_fresh"].build(shape, rng)

``shape`` is the event shape the layer receives, a vector (D,) or an image
(C, H, W); ``out_shape`` the event shape it gives. ``rng`` is a seeded host
generator: the same seed builds the same layer (parameters, masks, data-dependent
state), so a test can build one layer twice and compare two ways of training
it. Every parameter is drawn at random (a zero-initialised last layer would
make most gradients trivially zero), and so is every state a kind has
(ActNorm initialised on a batch, BatchNorm's running statistics and last batch).

A kind's ``fits(shape, first)`` says whether it accepts that input (``first``:
it is the first layer of the flow, where the data enters; the logit transform
needs data in [0, 1] and sits only there). Nested kinds (``flow``,
``inverse``, ``factor_out``, ``glow_step_*``) hold layers of other kinds,
drawn from ``rng``: ``random_flow`` composes any of them, to any depth.

``covered_classes()`` lists the Bijection classes the kinds build; the tests
compare it with every Bijection class that ``minflow.flows`` defines
(``flow_classes()``), so a new layer class without a factory here fails them.
A new layer kind is covered by every recompute and state test once it has a
factory here.
"""

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from typing import Callable

import numpy

import minflow.flows
from minflow.backend import make_rng
from minflow.flows import (
    IAF,
    ActNorm,
    AdditiveCoupling,
    Affine,
    AffineCoupling,
    BatchNorm,
    Bijection,
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
    Patchify,
    Permutation,
    Planar,
    Radial,
    RationalQuadraticSpline,
    Reverse,
    Squeeze,
    TarFlowBlock,
    channel_mask,
    checkerboard_mask,
    half_mask,
    parity_mask,
)
from minflow.flows.affine_coupling import ScaleHookCoupling
from minflow.flows.image_additive_coupling import ImageAdditiveCoupling
from minflow.nn import CausalTransformer

F64 = numpy.float64
HIDDEN_VECTORS = (6,)  # conditioner widths: small, the tests build many layers
HIDDEN_IMAGES = {"hidden": 4, "n_blocks": 1}

__all__ = ["KINDS", "Kind", "covered_classes", "data_batch", "flow_classes", "random_flow"]


@dataclass(frozen=True)
class Kind:
    """One way of building a layer: ``build(shape, rng) -> (layer, out_shape)``, for inputs where ``fits``."""

    classes: tuple  # the Bijection classes it builds (nested layers aside)
    fits: Callable  # fits(shape, first) -> bool
    build: Callable


def _randomize(layer, rng, scale=0.4):
    for p in layer.params.values():
        p[...] = scale * rng.standard_normal(p.shape)
    return layer


def _seed(rng):
    return make_rng(int(rng.integers(2**31)))


def data_batch(shape, rng, n=5, unit_interval=False):
    """A float64 batch (n, *shape): uniform in [0.05, 0.95] for the logit transform, else off-centre normal."""
    if unit_interval:
        return rng.uniform(0.05, 0.95, (n, *shape))
    return 1.5 * rng.standard_normal((n, *shape)) + 0.5


def _is_vector(shape):
    return len(shape) == 1


def _is_image(shape):
    return len(shape) == 3


def _is_tokens(shape):
    return len(shape) == 2  # (T, D): a sequence of T tokens of D values


# -- the kinds -----------------------------------------------------------------------------


def _actnorm_fresh(shape, rng):
    return ActNorm(shape[0], dtype=F64), shape


def _actnorm_initialised(shape, rng):
    layer = ActNorm(shape[0], dtype=F64)
    layer.forward(data_batch(shape, rng))  # the data-dependent initialisation
    for p in layer.params.values():
        p += 0.2 * rng.standard_normal(p.shape)
    return layer, shape


def _batch_norm(training, after_forward):
    def build(shape, rng):
        layer = _randomize(BatchNorm(shape[0], momentum=0.3, dtype=F64), rng)
        layer.set_buffer("running_mean", rng.standard_normal(shape[0]))
        layer.set_buffer("running_var", rng.uniform(0.5, 2.0, shape[0]))
        if after_forward:  # the inverse in training mode then uses this batch's statistics
            layer.forward(data_batch(shape, rng))
            layer.release_caches()
        return layer.train(training), shape

    return build


def _affine_coupling(shape, rng):
    d = shape[0]
    mask = half_mask(d, bool(rng.integers(2))) if rng.integers(2) else parity_mask(d, int(rng.integers(2)))
    layer = AffineCoupling(
        d, mask, hidden=HIDDEN_VECTORS, learnable_scale=bool(rng.integers(2)), dtype=F64, rng=_seed(rng)
    )
    return _randomize(layer, rng), shape


def _additive_coupling(shape, rng):
    d = shape[0]
    layer = AdditiveCoupling(d, parity_mask(d, int(rng.integers(2))), hidden=HIDDEN_VECTORS, dtype=F64, rng=_seed(rng))
    return _randomize(layer, rng), shape


def _transformer(rng):
    """An affine or a rational-quadratic spline map, drawn (the spline's tails and bins both met by the data)."""
    return (
        RationalQuadraticSpline(n_bins=4, bound=2.0)
        if rng.integers(2)
        else Affine(str(rng.choice(["tanh", "exp", "softclip"])))
    )


def _spline_coupling(shape, rng):
    if _is_vector(shape):
        d = shape[0]
        layer = Coupling.for_vectors(
            d, parity_mask(d, int(rng.integers(2))), _transformer(rng), hidden=HIDDEN_VECTORS, dtype=F64, rng=_seed(rng)
        )
    else:
        mask = _image_mask(shape, rng, spatial=bool(rng.integers(2)) and shape[1] * shape[2] >= 2)
        layer = Coupling.for_images(shape[0], mask, _transformer(rng), dtype=F64, rng=_seed(rng), **HIDDEN_IMAGES)
    # weights of 0.1: slopes dz/dx within [0.4, 1.6] on test data; at 0.3 the ResNet drives some to 1e-6, where
    # x rebuilt from z loses digits to the conditioning (recompute then agrees to ~5e-10: rounding, not a bug)
    return _randomize(layer, rng, scale=0.1), shape


def _autoregressive(inverse):
    def build(shape, rng):
        order = str(rng.choice(["natural", "reversed", "random"]))
        cls = IAF if inverse else MaskedAutoregressive
        layer = cls(shape[0], _transformer(rng), hidden=HIDDEN_VECTORS, order=order, dtype=F64, rng=_seed(rng))
        return _randomize(layer, rng, scale=0.3), shape

    return build


def _image_mask(shape, rng, spatial):
    c, h, w = shape
    return checkerboard_mask(h, w, int(rng.integers(2))) if spatial else channel_mask(c, bool(rng.integers(2)))


def _image_affine_coupling(spatial):
    def build(shape, rng):
        mask = _image_mask(shape, rng, spatial)
        scale = bool(rng.integers(2))
        layer = ImageAffineCoupling(shape[0], mask, learnable_scale=scale, dtype=F64, rng=_seed(rng), **HIDDEN_IMAGES)
        return _randomize(layer, rng), shape

    return build


def _image_additive_coupling(shape, rng):
    mask = _image_mask(shape, rng, spatial=False)  # channel masks only
    layer = ImageAdditiveCoupling(shape[0], mask, dtype=F64, rng=_seed(rng), **HIDDEN_IMAGES)
    return _randomize(layer, rng), shape


def _planar(shape, rng):
    return _randomize(Planar(shape[0], dtype=F64, rng=_seed(rng)), rng), shape


def _radial(shape, rng):
    return _randomize(Radial(shape[0], dtype=F64, rng=_seed(rng)), rng), shape


def _invertible_linear(shape, rng):
    layer = InvertibleLinear(shape[0], dtype=F64, rng=_seed(rng))
    c = shape[0]
    layer.params["W"][...] = layer.params["W"] @ (numpy.eye(c) + 0.2 * rng.standard_normal((c, c)))  # well-conditioned
    return layer, shape


def _invertible_linear_lu(shape, rng):
    return _randomize(InvertibleLinearLU(shape[0], dtype=F64, rng=_seed(rng)), rng), shape


def _permutation(shape, rng):
    return Permutation(rng.permutation(shape[0])), shape


def _reverse(shape, rng):
    return Reverse(shape[0]), shape


def _squeeze(shape, rng):
    c, h, w = shape
    return Squeeze(), (4 * c, h // 2, w // 2)


def _unsqueeze(shape, rng):
    c, h, w = shape
    return Inverse(Squeeze()), (c // 4, 2 * h, 2 * w)


def _logit(shape, rng):
    return Logit(alpha=float(rng.uniform(0.0, 0.1))), shape


def _glow_step(shape, rng):
    mixing = str(rng.choice(["lu", "plain", "reverse", "shuffle"]))
    if _is_vector(shape):
        kind = str(rng.choice(["affine", "additive"]))
        step = GlowStep.for_vectors(
            shape[0], hidden=HIDDEN_VECTORS, coupling=kind, mixing=mixing, dtype=F64, rng=_seed(rng)
        )
    else:
        coupling = _image_affine_coupling(spatial=False)(shape, rng)[0]
        step = GlowStep(shape[0], coupling, mixing=mixing, dtype=F64, rng=_seed(rng))
    for name, p in step.params.items():
        if not name.startswith("actnorm."):  # the ActNorm stays fresh: its data-dependent init is part of the test
            p[...] = 0.4 * rng.standard_normal(p.shape)
    if mixing == "plain":
        step.mixing.params["W"][...] = numpy.eye(shape[0]) + 0.1 * rng.standard_normal((shape[0], shape[0]))
    return step, shape


def _patchify(shape, rng):
    c, h, w = shape
    return Patchify(2, shape), ((h // 2) * (w // 2), 4 * c)


def _tarflow_block(shape, rng):
    t, d = shape
    layer = TarFlowBlock(
        CausalTransformer(d, 2 * d, t, hidden=8, depth=1, n_heads=2, mlp_ratio=2, dtype=F64, rng=_seed(rng))
    )
    return _randomize(layer, rng, scale=0.3), shape


def _nested_flow(shape, rng):
    layers, out = random_flow(shape, rng, depth=int(rng.integers(1, 3)), first=False, nesting=1)
    return Flow(layers, recompute=[None, "invert"][int(rng.integers(2))]), out


def _inverse(shape, rng):
    """Inverse of a layer that maps out_shape back to shape: drawn on shape, so only shape-keeping kinds."""
    names = [n for n in KINDS if n not in NESTED and KINDS[n].fits(shape, False) and n not in SHAPE_CHANGING]
    layer, out = KINDS[str(rng.choice(names))].build(shape, rng)
    return Inverse(layer), out


def _factor_out(shape, rng):
    c, h, w = shape
    keep = int(rng.integers(1, c))
    layers, _ = random_flow((keep, h, w), rng, depth=int(rng.integers(1, 3)), first=False, nesting=1, keep_shape=True)
    return FactorOut(Flow(layers, recompute=[None, "invert"][int(rng.integers(2))]), keep), shape


KINDS = {
    "actnorm_fresh": Kind((ActNorm,), lambda s, f: not _is_tokens(s), _actnorm_fresh),
    "actnorm_initialised": Kind((ActNorm,), lambda s, f: not _is_tokens(s), _actnorm_initialised),
    "batch_norm_training": Kind((BatchNorm,), lambda s, f: not _is_tokens(s), _batch_norm(True, False)),
    "batch_norm_training_after_forward": Kind((BatchNorm,), lambda s, f: not _is_tokens(s), _batch_norm(True, True)),
    "batch_norm_eval": Kind((BatchNorm,), lambda s, f: not _is_tokens(s), _batch_norm(False, True)),
    "affine_coupling": Kind(
        (AffineCoupling, ScaleHookCoupling), lambda s, f: _is_vector(s) and s[0] >= 2, _affine_coupling
    ),
    "additive_coupling": Kind((AdditiveCoupling,), lambda s, f: _is_vector(s) and s[0] >= 2, _additive_coupling),
    "image_affine_coupling_checkerboard": Kind(
        (ImageAffineCoupling,), lambda s, f: _is_image(s) and s[1] * s[2] >= 2, _image_affine_coupling(True)
    ),
    "image_affine_coupling_channels": Kind(
        (ImageAffineCoupling,), lambda s, f: _is_image(s) and s[0] % 2 == 0, _image_affine_coupling(False)
    ),
    "image_additive_coupling": Kind(
        (ImageAdditiveCoupling,), lambda s, f: _is_image(s) and s[0] % 2 == 0, _image_additive_coupling
    ),
    "coupling_vectors": Kind((Coupling,), lambda s, f: _is_vector(s) and s[0] >= 2, _spline_coupling),
    "coupling_images": Kind((Coupling,), lambda s, f: _is_image(s) and s[0] % 2 == 0, _spline_coupling),
    "maf": Kind((MaskedAutoregressive,), lambda s, f: _is_vector(s) and s[0] >= 2, _autoregressive(False)),
    "iaf": Kind((IAF, MaskedAutoregressive), lambda s, f: _is_vector(s) and s[0] >= 2, _autoregressive(True)),
    "planar": Kind((Planar,), lambda s, f: _is_vector(s), _planar),
    "radial": Kind((Radial,), lambda s, f: _is_vector(s), _radial),
    "invertible_linear": Kind((InvertibleLinear,), lambda s, f: not _is_tokens(s), _invertible_linear),
    "invertible_linear_lu": Kind((InvertibleLinearLU,), lambda s, f: not _is_tokens(s), _invertible_linear_lu),
    "permutation": Kind((Permutation,), lambda s, f: True, _permutation),
    "reverse": Kind((Reverse,), lambda s, f: True, _reverse),
    "squeeze": Kind((Squeeze,), lambda s, f: _is_image(s) and s[1] % 2 == 0 and s[2] % 2 == 0 and s[1] >= 4, _squeeze),
    "unsqueeze": Kind((Inverse, Squeeze), lambda s, f: _is_image(s) and s[0] % 4 == 0, _unsqueeze),
    "logit": Kind((Logit,), lambda s, f: f, _logit),
    "patchify": Kind((Patchify,), lambda s, f: _is_image(s) and s[1] % 2 == 0 and s[2] % 2 == 0, _patchify),
    "tarflow_block": Kind((TarFlowBlock,), lambda s, f: _is_tokens(s) and s[0] >= 2, _tarflow_block),
    "glow_step_vectors": Kind((GlowStep,), lambda s, f: _is_vector(s) and s[0] >= 2, _glow_step),
    "glow_step_images": Kind((GlowStep,), lambda s, f: _is_image(s) and s[0] % 2 == 0, _glow_step),
    "flow": Kind((Flow,), lambda s, f: True, _nested_flow),
    "inverse": Kind((Inverse,), lambda s, f: True, _inverse),
    "factor_out": Kind((FactorOut,), lambda s, f: _is_image(s) and s[0] >= 2, _factor_out),
}
NESTED = {"flow", "inverse", "factor_out", "glow_step_vectors", "glow_step_images"}
SHAPE_CHANGING = {"squeeze", "unsqueeze", "patchify"}


def random_flow(shape, rng, depth, first=True, nesting=0, keep_shape=False, names=None):
    """``depth`` layers of kinds drawn from ``rng`` (or the given ``names``), each fitting the shape it receives.

    Returns (layers, out_shape). Nested kinds are drawn only ``nesting`` < 1
    deep, so a flow stays small; ``keep_shape`` leaves out kinds that change it.
    """
    layers = []
    for k in range(depth):
        if names is not None:
            name = names[k]
        else:
            allowed = [
                n
                for n, kind in KINDS.items()
                if kind.fits(shape, first and k == 0)
                and (nesting < 1 or n not in NESTED)
                and not (keep_shape and n in SHAPE_CHANGING)
            ]
            name = str(rng.choice(allowed))
        layer, shape = KINDS[name].build(shape, rng)
        layers.append(layer)
    return layers, shape


def flow_classes():
    """Every public Bijection class defined in a module of ``minflow.flows`` (the base class aside)."""
    found = set()
    for info in pkgutil.walk_packages(minflow.flows.__path__, "minflow.flows."):
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            defined_here = cls.__module__ == module.__name__ and not name.startswith("_")
            # an abstract skeleton without its own forward (Coupling) is not a layer
            if defined_here and issubclass(cls, Bijection) and cls.forward is not Bijection.forward:
                found.add(cls)
    return found


def covered_classes():
    return {cls for kind in KINDS.values() for cls in kind.classes}
