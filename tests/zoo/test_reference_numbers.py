"""Every zoo model keeps its numbers: log_prob and every gradient, both directions, against a fixture.

tests/fixtures/zoo_reference.npz holds, for small float64 versions of every
zoo model (tests/fixtures/make_fixtures.py builds them), the log-densities of
a fixed batch and the gradients of maximum likelihood and of reverse KL. A
refactor that keeps the computation keeps them to 1e-12 relative.
"""

import os
import sys

import numpy
import pytest

from minflow.backend import make_rng
from minflow.data.energy import get_energy

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")
sys.path.insert(0, FIXTURES)
from make_fixtures import perturb, reference_models

REFERENCE = dict(numpy.load(os.path.join(FIXTURES, "zoo_reference.npz")))
RTOL = 1e-12


def _assert_close(name, got, want):
    err = float(numpy.max(numpy.abs(got - want))) if want.size else 0.0
    scale = float(numpy.max(numpy.abs(want))) if want.size else 0.0
    assert err <= RTOL * scale + 1e-300, f"{name}: |got - reference| = {err:.3g}, |reference| = {scale:.3g}"


@pytest.mark.parametrize("name", list(reference_models()))
def test_zoo_model_matches_its_recorded_numbers(name):
    model, x = reference_models()[name]
    model.log_prob(x)  # ActNorm's data-dependent initialisation, as when recorded
    perturb(model, 11)
    _assert_close(f"{name} log_prob", model.log_prob(x), REFERENCE[f"{name}/log_prob"])
    model.zero_grads()
    _assert_close(f"{name} nll", numpy.asarray(model.nll_and_backward(x)), REFERENCE[f"{name}/nll"])
    grads = model.grads
    assert {k for k in REFERENCE if k.startswith(f"{name}/nll_grad/")} == {f"{name}/nll_grad/{k}" for k in grads}
    for k, g in grads.items():
        _assert_close(f"{name} nll grad {k}", g, REFERENCE[f"{name}/nll_grad/{k}"])
    if model.event_shape == (2,):
        model.zero_grads()
        loss = model.reverse_kl_and_backward(get_energy("U1"), 5, make_rng(12))
        _assert_close(f"{name} reverse_kl", numpy.asarray(loss), REFERENCE[f"{name}/reverse_kl"])
        for k, g in model.grads.items():
            _assert_close(f"{name} reverse_kl grad {k}", g, REFERENCE[f"{name}/reverse_kl_grad/{k}"])
