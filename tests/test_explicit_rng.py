"""Every layer with a random initialisation takes its generator explicitly.

A constructor in ``minflow.flows``, ``minflow.nn`` or ``minflow.continuous``
that draws initial values has a required ``rng`` keyword: built without one it
raises, and two layers built one after the other from one generator differ
(``Flow([Planar(2, rng=rng) for _ in range(8)])`` is eight different layers).
``BUILDERS`` holds a small instance of every such class; a class with an
``rng`` argument that is missing here fails ``test_builders_cover_every_class_with_an_rng``.
A zoo model builds all its layers from the one generator made from its seed.
"""

import importlib
import inspect
import pkgutil

import numpy
import pytest

import minflow.continuous
import minflow.flows
import minflow.nn
from minflow.backend import make_rng
from minflow.continuous import VelocityField
from minflow.flows import (
    IAF,
    AdditiveCoupling,
    Affine,
    AffineCoupling,
    Coupling,
    GlowStep,
    ImageAffineCoupling,
    InvertibleLinear,
    InvertibleLinearLU,
    MaskedAutoregressive,
    Planar,
    Radial,
    channel_mask,
    half_mask,
    parity_mask,
)
from minflow.flows.image_additive_coupling import ImageAdditiveCoupling
from minflow.nn import MADE, MLP, Conv2d, Linear
from minflow.nn.attention import CausalSelfAttention
from minflow.nn.causal_transformer import CausalTransformer
from minflow.nn.feed_forward import FeedForward
from minflow.nn.masked_linear import MaskedLinear
from minflow.nn.positional_embedding import PositionalEmbedding
from minflow.nn.resnet import ResidualBlock, ResNet
from minflow.nn.transformer_block import TransformerBlock
from minflow.zoo import glow_2d, planar_2d, radial_2d, realnvp_2d

F64 = numpy.float64

# name -> (constructor, positional arguments, keyword arguments), each small; rng is added by the tests.
BUILDERS = {
    "AdditiveCoupling": (AdditiveCoupling, (4, half_mask(4)), {"hidden": (5,), "dtype": F64}),
    "AffineCoupling": (AffineCoupling, (4, parity_mask(4)), {"hidden": (5,), "dtype": F64}),
    "MaskedAutoregressive": (MaskedAutoregressive, (3, Affine()), {"hidden": (5,), "dtype": F64}),
    "IAF": (IAF, (3, Affine()), {"hidden": (5,), "order": "random", "dtype": F64}),
    "Coupling.for_vectors": (Coupling.for_vectors, (4, half_mask(4), Affine()), {"hidden": (5,), "dtype": F64}),
    "Coupling.for_images": (Coupling.for_images, (2, channel_mask(2), Affine()), {"hidden": 3, "n_blocks": 1}),
    "GlowStep": (
        lambda *a, **k: GlowStep(
            2, ImageAffineCoupling(2, channel_mask(2), hidden=3, n_blocks=1, rng=make_rng(9)), *a, **k
        ),
        (),
        {},
    ),
    "GlowStep.for_vectors": (GlowStep.for_vectors, (4,), {"hidden": (5,), "dtype": F64}),
    "ImageAdditiveCoupling": (ImageAdditiveCoupling, (2, channel_mask(2)), {"hidden": 3, "n_blocks": 1}),
    "ImageAffineCoupling": (ImageAffineCoupling, (2, channel_mask(2)), {"hidden": 3, "n_blocks": 1}),
    "InvertibleLinear": (InvertibleLinear, (3,), {"dtype": F64}),
    "InvertibleLinearLU": (InvertibleLinearLU, (3,), {"dtype": F64}),
    "Planar": (Planar, (2,), {"dtype": F64}),
    "Radial": (Radial, (2,), {"dtype": F64}),
    "CausalSelfAttention": (CausalSelfAttention, (4, 2), {}),
    "CausalTransformer": (CausalTransformer, (2, 2, 3), {"hidden": 4, "depth": 1, "n_heads": 2, "out_init": "uniform"}),
    "Conv2d": (Conv2d, (2, 3), {}),
    "FeedForward": (FeedForward, (4,), {"ratio": 1}),
    "Linear": (Linear, (3, 2), {}),
    "MADE": (MADE, (3,), {"hidden": (5,), "last_init": "uniform"}),
    "MaskedLinear": (MaskedLinear, (numpy.ones((3, 2), dtype=bool),), {}),
    "MLP": (MLP, ((3, 5, 2),), {"last_init": "uniform"}),
    "PositionalEmbedding": (PositionalEmbedding, (3, 4), {}),
    "ResidualBlock": (ResidualBlock, (2,), {}),
    "ResNet": (ResNet, (2, 2), {"hidden": 3, "n_blocks": 1, "last_init": "uniform"}),
    "TransformerBlock": (TransformerBlock, (4, 2), {"mlp_ratio": 1}),
    "VelocityField": (VelocityField, (), {"hidden": (5,), "n_fourier": 2}),
}


def classes_with_rng():
    """Names of the classes (and their ``for_*`` constructors) in flows, nn and continuous that take ``rng``."""
    found = set()
    for package in (minflow.flows, minflow.nn, minflow.continuous):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for name, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ != module.__name__ or name.startswith("_"):
                    continue
                if "rng" in inspect.signature(cls.__init__).parameters:
                    found.add(name)
                for attr, value in vars(cls).items():
                    if isinstance(value, classmethod) and "rng" in inspect.signature(value.__func__).parameters:
                        found.add(f"{name}.{attr}")
    return found


def _values(layer):
    """Every parameter, flattened into one float64 vector (host)."""
    return numpy.concatenate([numpy.ravel(numpy.asarray(p, dtype=F64)) for _, p in sorted(layer.params.items())])


def test_builders_cover_every_class_with_an_rng():
    assert classes_with_rng() == set(BUILDERS)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_constructor_without_rng_raises(name):
    build, args, kwargs = BUILDERS[name]
    with pytest.raises(TypeError, match="rng"):
        build(*args, **kwargs)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_two_layers_from_one_generator_differ(name):
    build, args, kwargs = BUILDERS[name]
    rng = make_rng(0)
    first, second = build(*args, **kwargs, rng=rng), build(*args, **kwargs, rng=rng)
    a, b = _values(first), _values(second)
    assert a.shape == b.shape and numpy.abs(a - b).max() > 1e-3
    again = build(*args, **kwargs, rng=make_rng(0))
    numpy.testing.assert_array_equal(_values(again), a)  # the same seed builds the same layer


def test_missing_rng_error_says_how_to_pass_one():
    with pytest.raises(TypeError, match=r"rng=minflow\.backend\.make_rng\(seed\)"):
        InvertibleLinear(3)
    InvertibleLinear(3, matrix=numpy.eye(3))  # a given matrix needs no generator


@pytest.mark.parametrize(
    "build", [lambda: planar_2d(n_layers=3), lambda: radial_2d(n_layers=3), lambda: realnvp_2d(n_layers=2), glow_2d]
)
def test_zoo_layers_differ_and_come_from_its_seed(build):
    model, again = build(), build()
    layers = list(model.flow.layers)
    values = [_values(layer) for layer in layers]
    for i in range(len(values) - 1):
        assert values[i].shape != values[i + 1].shape or not numpy.array_equal(values[i], values[i + 1])
    numpy.testing.assert_array_equal(
        numpy.concatenate(values), numpy.concatenate([_values(x) for x in again.flow.layers])
    )
