"""Tests for minflow/backend.py: backend choice, moving arrays, seeded randomness, stable functions."""

import os
import subprocess
import sys

import numpy
import pytest

from minflow import backend

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def fresh_backend(monkeypatch):
    """Forget the chosen default backend (restored after the test)."""
    monkeypatch.setattr(backend, "_default_xp", None)
    monkeypatch.delenv("MINFLOW_BACKEND", raising=False)


@pytest.fixture
def no_cupy(monkeypatch):
    """Make `import cupy` fail, as on a machine without it (even where it is installed)."""
    monkeypatch.setitem(sys.modules, "cupy", None)


def test_default_backend_is_numpy(fresh_backend):
    assert backend.get_backend() is numpy
    assert backend.DEFAULT_DTYPE is numpy.float32 and backend.CHECK_DTYPE is numpy.float64


def test_set_backend_cupy_without_cupy_says_how_to_fix(fresh_backend, no_cupy):
    with pytest.raises(RuntimeError) as err:
        backend.set_backend("cupy")
    message = str(err.value)
    assert "pip install" in message and "MINFLOW_BACKEND=numpy" in message
    assert backend.get_backend() is numpy  # the failed switch changed nothing


def test_env_cupy_without_cupy_says_how_to_fix(fresh_backend, no_cupy, monkeypatch):
    monkeypatch.setenv("MINFLOW_BACKEND", "cupy")
    with pytest.raises(RuntimeError, match="MINFLOW_BACKEND=numpy"):
        backend.get_backend()


def test_unknown_backend_is_a_value_error(fresh_backend):
    with pytest.raises(ValueError, match="Unknown backend 'torch'; expected one of"):
        backend.set_backend("torch")


def test_set_backend_numpy(fresh_backend):
    assert backend.set_backend("numpy") is numpy
    assert backend.get_backend() is numpy
    assert backend.zeros((2,), numpy.float32).__class__ is numpy.ndarray


def run_python(code, **env):
    """Run `code` in a fresh interpreter with extra environment variables; (returncode, output)."""
    full_env = {k: v for k, v in os.environ.items() if k != "MINFLOW_BACKEND"}
    full_env.update(env, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode, done.stdout + done.stderr


def test_minflow_backend_env_var_is_honoured():
    code = (
        "from minflow import backend\n"
        "try:\n"
        "    print(backend.get_backend().__name__)\n"
        "except ValueError as err:\n"
        "    print('ValueError', err)\n"
    )
    rc, out = run_python(code, MINFLOW_BACKEND="NumPy")
    assert rc == 0 and out.strip() == "numpy", out
    rc, out = run_python(code, MINFLOW_BACKEND="jax")
    assert rc == 0 and out.startswith("ValueError Unknown backend 'jax'"), out


def test_get_array_module_follows_inputs(xp):
    a = xp.zeros(3)
    assert backend.get_array_module(a) is xp
    assert backend.get_array_module(numpy.zeros(2), a) is xp
    assert backend.get_array_module(1.0, None) is numpy
    assert backend.get_array_module() is numpy
    assert backend.is_cupy_array(a) == (xp is not numpy)


def test_cpu_chunk_is_the_given_rows_on_a_cpu_and_every_row_on_a_gpu(xp):
    a = xp.zeros((10, 2))
    assert backend.cpu_chunk(a, 4) == (4 if xp is numpy else 10)


def test_to_numpy_and_to_device_round_trip(xp):
    host = numpy.arange(6, dtype=numpy.float64).reshape(2, 3)
    on_device = backend.to_device(host, xp, numpy.float32)
    assert backend.get_array_module(on_device) is xp and on_device.dtype == numpy.float32
    back = backend.to_numpy(on_device)
    assert type(back) is numpy.ndarray
    numpy.testing.assert_array_equal(back, host)
    assert type(backend.to_numpy([1, 2])) is numpy.ndarray


def test_seeded_rngs_are_reproducible(xp):
    def draw(seed):
        return backend.to_numpy(backend.normal((4, 3), numpy.float64, backend.make_rng(seed, xp)))

    numpy.testing.assert_array_equal(draw(5), draw(5))
    assert not numpy.array_equal(draw(5), draw(6))
    u1 = backend.uniform((100,), -2.0, 3.0, numpy.float32, backend.make_rng(1, xp))
    u2 = backend.uniform((100,), -2.0, 3.0, numpy.float32, backend.make_rng(1, xp))
    numpy.testing.assert_array_equal(backend.to_numpy(u1), backend.to_numpy(u2))


def test_random_helpers_shapes_dtypes_and_ranges(xp):
    rng = backend.make_rng(0, xp)
    u = backend.to_numpy(backend.uniform((10000,), -2.0, 3.0, numpy.float32, rng))
    assert u.dtype == numpy.float32 and u.min() >= -2.0 and u.max() <= 3.0
    assert u.mean() == pytest.approx(0.5, abs=0.05)
    z = backend.to_numpy(backend.normal((200, 50), numpy.float64, rng, scale=3.0))
    assert z.dtype == numpy.float64 and z.shape == (200, 50)
    assert z.std() == pytest.approx(3.0, rel=0.02) and z.mean() == pytest.approx(0.0, abs=0.05)
    zeros = backend.zeros((2, 3), numpy.float32, xp)
    assert backend.get_array_module(zeros) is xp and zeros.dtype == numpy.float32 and not zeros.any()


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_stable_functions_are_finite_and_exact_for_huge_inputs(xp, dtype):
    a = backend.to_device(numpy.array([-1e4, -30.0, 0.0, 30.0, 1e4]), xp, dtype)
    with numpy.errstate(over="raise", invalid="raise"):  # a naive exp(1e4) would overflow
        sp = backend.to_numpy(backend.softplus(a))
        ls = backend.to_numpy(backend.log_sigmoid(a))
        sg = backend.to_numpy(backend.sigmoid(a))
    for out in (sp, ls, sg):
        assert out.dtype == dtype and numpy.isfinite(out).all()
    numpy.testing.assert_allclose(sp, [0.0, numpy.log1p(numpy.exp(-30.0)), numpy.log(2), 30.0, 1e4], rtol=1e-6)
    numpy.testing.assert_allclose(ls, [-1e4, -30.0, -numpy.log(2), -numpy.exp(-30.0), 0.0], rtol=1e-6, atol=1e-30)
    # sigmoid = 0.5 (1 + tanh(a / 2)) is exact to an absolute 1 ulp of 1, not relatively in the far tail
    numpy.testing.assert_allclose(sg, [0.0, numpy.exp(-30.0), 0.5, 1.0, 1.0], rtol=1e-6, atol=numpy.finfo(dtype).eps)


def test_stable_functions_match_naive_formulas_where_those_work(rng):
    a = rng.uniform(-20, 20, size=50)
    numpy.testing.assert_allclose(backend.softplus(a), numpy.log1p(numpy.exp(a)), rtol=1e-12)
    numpy.testing.assert_allclose(backend.sigmoid(a), 1 / (1 + numpy.exp(-a)), rtol=1e-12, atol=1e-15)
    numpy.testing.assert_allclose(backend.log_sigmoid(a), -numpy.log1p(numpy.exp(-a)), rtol=1e-12)
    m = rng.standard_normal((4, 6))
    numpy.testing.assert_allclose(backend.logsumexp(m, axis=1), numpy.log(numpy.exp(m).sum(axis=1)), rtol=1e-12)
    numpy.testing.assert_allclose(backend.logsumexp(m, axis=0), numpy.log(numpy.exp(m).sum(axis=0)), rtol=1e-12)


def test_logsumexp_is_finite_for_huge_inputs(xp):
    a = backend.to_device(numpy.array([[1e4, 1e4], [-1e4, -1e4], [1e4, -1e4], [0.0, -numpy.inf]]), xp)
    with numpy.errstate(over="raise", invalid="raise"):
        out = backend.to_numpy(backend.logsumexp(a, axis=1))
    numpy.testing.assert_allclose(out, [1e4 + numpy.log(2), -1e4 + numpy.log(2), 1e4, 0.0], rtol=1e-12)
