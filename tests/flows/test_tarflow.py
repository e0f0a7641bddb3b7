"""Tests for minflow/flows/tarflow.py: the TarFlow block, its sequential inverse and its triangular Jacobian."""

import numpy
import pytest
from helpers import assert_layer_passes_all_checks, randomize_params

from minflow.backend import make_rng, to_device, to_numpy
from minflow.flows import TarFlowBlock
from minflow.gradcheck import brute_force_logdet, check_logdet
from minflow.nn import CausalTransformer


def make_block(dtype, features=2, n_tokens=4, scale=0.3):
    block = TarFlowBlock(
        CausalTransformer(
            features, 2 * features, n_tokens, hidden=8, depth=1, n_heads=2, mlp_ratio=2, dtype=dtype, rng=make_rng(0)
        )
    )
    return randomize_params(block, numpy.random.default_rng(1), scale=scale)


@pytest.mark.parametrize("shape", [(2, 4), (1, 5)], ids=["4_tokens_of_2", "5_tokens_of_1"])
def test_tarflow_block_passes_all_checks(shape, xp, rng):
    # gradients of input and every parameter in both directions, log-det against the brute-force
    # Jacobian, round trip 1e-10, Flow([layer, Inverse(layer)]) the identity, float32 kept
    def make(dtype):
        return make_block(dtype, features=shape[0], n_tokens=shape[1])

    assert_layer_passes_all_checks(make, rng.standard_normal((3, shape[1], shape[0])), xp)


def jacobian(fn, x, h=1e-5):
    """dz/dx of one sample by central differences, flattened in token order: (T D, T D)."""
    n = x.size
    jac = numpy.zeros((n, n))
    for j in range(n):
        step = numpy.zeros(n)
        step[j] = h
        plus = fn((x.ravel() + step).reshape(x.shape))[0].ravel()
        minus = fn((x.ravel() - step).reshape(x.shape))[0].ravel()
        jac[:, j] = (plus - minus) / (2 * h)
    return jac


def off_structure(jac, features):
    """Largest |entry| where a TarFlow Jacobian must be zero: later tokens, and off the diagonal within a token."""
    token = numpy.arange(jac.shape[0]) // features
    later = token[None, :] > token[:, None]  # column's token after the row's
    same_off_diag = (token[None, :] == token[:, None]) & ~numpy.eye(jac.shape[0], dtype=bool)
    return numpy.abs(jac[later | same_off_diag]).max()


def test_tarflow_jacobian_is_triangular_in_token_order_with_diagonal_exp_minus_alpha(rng):
    block = make_block(numpy.float64, features=3, n_tokens=4)
    x = rng.standard_normal((1, 4, 3))
    jac = jacobian(block.forward, x)
    assert off_structure(jac, 3) < 1e-10
    _, alpha, _ = block._conditioner(x)
    numpy.testing.assert_allclose(numpy.diag(jac), numpy.exp(-alpha).ravel(), rtol=1e-8)
    assert numpy.abs(numpy.tril(jac, -1)).max() > 1e-3  # the conditioner does act on later tokens


def test_tarflow_without_the_shift_breaks_the_triangle_and_the_logdet(rng, monkeypatch):
    # the known failure of re-implementations: the conditioner sees its own token. Both checks above
    # must notice it, or they prove nothing.
    block = make_block(numpy.float64, features=3, n_tokens=4, scale=0.5)
    monkeypatch.setattr(block, "_shift", lambda x: x)
    x = rng.standard_normal((2, 4, 3))
    assert off_structure(jacobian(block.forward, x[:1]), 3) > 1e-3
    report = check_logdet(block, x, directions=("forward",))
    assert not report.ok, report
    formula = block.forward(x)[1]
    assert numpy.abs(formula - brute_force_logdet(block.forward, x)).max() > 1e-3


def test_tarflow_block_starts_as_the_identity(xp, rng):
    block = TarFlowBlock(
        CausalTransformer(2, 4, 4, hidden=8, depth=1, n_heads=2, dtype=numpy.float64, rng=make_rng(0))
    ).to(xp)
    x = to_device(rng.standard_normal((3, 4, 2)), xp)
    z, logdet = block.forward(x)
    assert numpy.array_equal(to_numpy(z), to_numpy(x)) and not to_numpy(logdet).any()


def test_tarflow_sequential_inverse_equals_solving_token_by_token_with_full_passes(rng):
    # x_t = z_t exp(alpha_t) + mu_t, each (mu_t, alpha_t) from a full causal pass over the x built so far
    block = make_block(numpy.float64, features=2, n_tokens=5)
    z = rng.standard_normal((3, 5, 2))
    x_cached, logdet = block.inverse(z)
    x = numpy.zeros_like(z)
    for t in range(5):
        mu, alpha, _ = block._conditioner(x)
        x[:, t] = z[:, t] * numpy.exp(alpha[:, t]) + mu[:, t]
    numpy.testing.assert_allclose(x_cached, x, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(logdet, block._conditioner(x)[1].sum(axis=(1, 2)), rtol=1e-12)


def test_tarflow_inverse_backward_accumulates_onto_earlier_gradients(rng):
    block = make_block(numpy.float64)
    z, dx, dlogdet = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2)), rng.standard_normal(3)
    block.inverse(z)
    dz_once = block.inverse_backward(dx, dlogdet)
    once = {name: g.copy() for name, g in block.grads.items()}
    block.inverse(z)
    dz_twice = block.inverse_backward(dx, dlogdet)
    numpy.testing.assert_allclose(dz_twice, dz_once, rtol=1e-12)
    for name, g in block.grads.items():
        numpy.testing.assert_allclose(g, 2 * once[name], rtol=1e-10, atol=1e-14, err_msg=name)


def test_tarflow_rejects_images_and_wrong_token_shapes():
    block = TarFlowBlock(CausalTransformer(4, 8, 16, hidden=8, depth=1, n_heads=2, rng=make_rng(0)))
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 16, 4\).*Patchify"):
        block.forward(numpy.zeros((2, 1, 8, 8), numpy.float32))
    with pytest.raises(ValueError, match=r"expects z of shape \(N, 16, 4\)"):
        block.inverse(numpy.zeros((2, 16, 3), numpy.float32))


def test_tarflow_block_rejects_a_conditioner_of_the_wrong_width():
    with pytest.raises(ValueError, match=r"CausalTransformer\(D, 2 \* D, T"):
        TarFlowBlock(CausalTransformer(3, 3, 4, hidden=4, depth=1, n_heads=1, rng=make_rng(0)))
    with pytest.raises(TypeError, match="CausalTransformer"):
        TarFlowBlock(object())
