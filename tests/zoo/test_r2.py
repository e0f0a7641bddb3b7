"""Tests for minflow/zoo/r2.py: the R2 reference model of docs/reference-problems.md, section 3."""

import math

import numpy
import pytest
from helpers import randomize_params

from minflow.backend import to_device, to_numpy
from minflow.distributions import StandardNormal
from minflow.flows import AffineCoupling
from minflow.zoo import realnvp_2d


def test_r2_has_exactly_35344_parameters():
    model = realnvp_2d()
    assert model.num_params() == 35_344
    assert len(model.flow) == 8 and all(isinstance(layer, AffineCoupling) for layer in model.flow.layers)
    # a learnable scale adds one entry per transformed coordinate and layer
    assert realnvp_2d(learnable_scale=True).num_params() == 35_344 + 8


def test_r2_layer_k_copies_coordinate_k_mod_2(rng):
    model = randomize_params(realnvp_2d(dtype=numpy.float64), rng)
    x = rng.standard_normal((5, 2))
    for k, layer in enumerate(model.flow.layers):
        copied = k % 2
        numpy.testing.assert_array_equal(to_numpy(layer.mask), numpy.arange(2) == copied)
        z = to_numpy(layer.forward(to_device(x))[0])  # on the model's (default) backend
        numpy.testing.assert_array_equal(z[:, copied], x[:, copied])
        assert numpy.abs(z[:, 1 - copied] - x[:, 1 - copied]).min() > 0  # the other one is transformed


def test_r2_starts_as_the_identity(rng):
    model = realnvp_2d(dtype=numpy.float64)
    x = 3 * rng.standard_normal((50, 2))
    z, logdet = model.flow.forward(to_device(x))
    numpy.testing.assert_array_equal(to_numpy(z), x)
    numpy.testing.assert_array_equal(to_numpy(logdet), numpy.zeros(50))
    numpy.testing.assert_allclose(to_numpy(model.log_prob(to_device(x))), StandardNormal((2,)).log_prob(x), rtol=1e-15)


def test_r2_initialisation_follows_the_spec():
    model = realnvp_2d()
    for layer in model.flow.layers:
        p = layer.net.params
        assert p["linear0.W"].shape == (1, 64) and p["linear1.W"].shape == (64, 64) and p["linear2.W"].shape == (64, 2)
        for name, bound in [("linear0", 1.0), ("linear1", 1 / math.sqrt(64))]:  # U(-1/sqrt(fan_in), ..)
            for key in ("W", "b"):
                a = numpy.abs(p[f"{name}.{key}"])
                assert a.max() <= bound and a.max() > 0.75 * bound, (name, key, a.max())
        assert not p["linear2.W"].any() and not p["linear2.b"].any()
        assert p["linear0.W"].dtype == numpy.float32


def test_r2_is_reproducible_from_seed():
    a, b, c = realnvp_2d(seed=3).params, realnvp_2d(seed=3).params, realnvp_2d(seed=4).params
    assert all(numpy.array_equal(a[k], b[k]) for k in a)
    assert not numpy.array_equal(a["flow.0.net.linear0.W"], c["flow.0.net.linear0.W"])
    # the layers draw different weights from the shared generator
    assert not numpy.array_equal(a["flow.0.net.linear1.W"], a["flow.1.net.linear1.W"])


def test_r2_options():
    model = realnvp_2d(n_layers=3, hidden=(16,), dtype=numpy.float64)
    assert len(model.flow) == 3 and model.event_shape == (2,)
    assert model.params["flow.2.net.linear0.W"].shape == (1, 16)
    assert all(p.dtype == numpy.float64 for p in model.params.values())
    with pytest.raises(ValueError, match="n_layers must be a positive integer"):
        realnvp_2d(n_layers=0)
