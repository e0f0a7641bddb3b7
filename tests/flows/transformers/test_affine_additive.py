"""Affine (four scale functions) and additive transformers through the shared layer checks, on vectors and images."""

import numpy
import pytest
from helpers import TransformerLayer, assert_layer_passes_all_checks

from minflow.flows.transformers import Additive, Affine


def _make(build, shape, seed=0):
    def make(dtype):
        transformer = build(dtype)
        params = 0.7 * numpy.random.default_rng(seed).standard_normal((shape[0], transformer.n_params, *shape[1:]))
        if "scale" in transformer.params:
            transformer.params["scale"][...] = numpy.random.default_rng(seed + 1).uniform(
                0.5, 1.5, transformer.params["scale"].shape
            )
        return TransformerLayer(transformer, params.astype(dtype))

    return make


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 2)])
@pytest.mark.parametrize("scale", ["tanh", "exp", "learnable", "softclip", "softclip-0.3"])
def test_affine_transformer_passes_all_checks(scale, shape, xp):
    def build(dtype):
        if scale == "softclip-0.3":  # |s_raw| up to ~2 meets the clip's flat part, s near the bound
            return Affine("softclip", bound=0.3)
        if scale != "learnable":
            return Affine(scale)
        return Affine("learnable", scale_shape=(shape[1],) + (1,) * (len(shape) - 2), dtype=dtype, xp=numpy)

    x = numpy.random.default_rng(2).standard_normal(shape)
    assert_layer_passes_all_checks(_make(build, shape), x, xp)


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 2)])
def test_additive_transformer_passes_all_checks(shape, xp):
    x = numpy.random.default_rng(3).standard_normal(shape)
    assert_layer_passes_all_checks(_make(lambda dtype: Additive(), shape), x, xp)


def test_affine_transformer_formula_and_per_entry_logdet():
    x = numpy.array([[0.5, -1.0]])
    params = numpy.array([[[0.3, -0.2], [1.0, 2.0]]])  # s_raw, t
    y, logdet = Affine().forward(x, params)
    numpy.testing.assert_allclose(y, x * numpy.exp(numpy.tanh([0.3, -0.2])) + [1.0, 2.0], rtol=1e-15)
    numpy.testing.assert_allclose(logdet, numpy.tanh([[0.3, -0.2]]), rtol=1e-15)


def test_softclip_log_scale_formula_bound_and_slope():
    s_raw = numpy.array([[-1e6, -2.0, 0.0, 0.5, 1e6]])
    params = numpy.stack([s_raw, numpy.zeros_like(s_raw)], axis=1)  # (1, 2, 5)
    x = numpy.ones_like(s_raw)
    transformer = Affine("softclip", bound=2.0)
    y, logdet = transformer.forward(x, params)
    expected = s_raw / (1 + numpy.abs(s_raw) / 2.0)  # [-2 + 4e-6, -1, 0, 0.4, 2 - 4e-6]
    numpy.testing.assert_allclose(logdet, expected, rtol=1e-15)
    numpy.testing.assert_allclose(y, numpy.exp(expected), rtol=1e-15)
    assert numpy.all(numpy.abs(logdet) < 2.0)
    _, dparams = transformer.backward(numpy.zeros_like(x), numpy.ones_like(x))  # dL/dlogdet = 1: ds_raw = ds/ds_raw
    numpy.testing.assert_allclose(dparams[:, 0], 1 / (1 + numpy.abs(s_raw) / 2.0) ** 2, rtol=1e-15)
    assert Affine("softclip").bound == pytest.approx(numpy.log(1e3))


def test_affine_transformer_rejects_a_bad_scale_choice():
    with pytest.raises(ValueError, match="scale must be one of"):
        Affine("sigmoid")
    with pytest.raises(ValueError, match="scale_shape exactly when"):
        Affine("learnable")
    with pytest.raises(ValueError, match="positive bound of scale='softclip'"):
        Affine("softclip", bound=0.0)
    with pytest.raises(ValueError, match="positive bound of scale='softclip'"):
        Affine("tanh", bound=3.0)
