"""Shared fixtures: one suite, two backends.

``xp`` runs a test once on NumPy and once on CuPy; the CuPy case is skipped,
with the reason, where CuPy is not installed or no GPU is reachable. Test
data is drawn on the host from the seeded generator ``rng`` and moved to the
backend with ``backend.to_device(x, xp)``.

Under ``MINFLOW_BACKEND=cupy`` (``make test-gpu``) the default backend is CuPy
for the whole run; where CuPy cannot run, every test is skipped with the
reason instead of erroring on the first parameter created.

The shared layer checks live in ``tests/helpers.py``.
"""

import os
import sys

import numpy
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # so that tests import `helpers` under any import mode


def _cupy_or_skip_reason():
    """(cupy, None) where CuPy can run here, else (None, why not)."""
    try:
        import cupy
    except ImportError:
        return None, "CuPy is not installed (pip install -r requirements-gpu.txt)"
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            return None, "CuPy is installed but no NVIDIA GPU was found"
    except Exception as err:  # noqa: BLE001 (no driver, broken CUDA install: any error means skip)
        return None, f"CuPy is installed but cannot reach a GPU ({err})"
    return cupy, None


_NO_CUPY_REASON = None  # set when MINFLOW_BACKEND=cupy is asked for but CuPy cannot run here


def pytest_configure(config):
    """Under MINFLOW_BACKEND=cupy without a usable CuPy: note why, and collect on NumPy (every test is skipped)."""
    global _NO_CUPY_REASON
    if os.environ.get("MINFLOW_BACKEND", "numpy").lower() != "cupy":
        return
    cupy, reason = _cupy_or_skip_reason()
    if cupy is None:
        _NO_CUPY_REASON = f"MINFLOW_BACKEND=cupy but {reason}; unset it to test on NumPy"
        os.environ["MINFLOW_BACKEND"] = "numpy"  # test modules that build models at import still collect


def pytest_collection_modifyitems(config, items):
    """Skip every test, saying why, where MINFLOW_BACKEND=cupy was asked for and CuPy cannot run."""
    if _NO_CUPY_REASON is not None:
        skip = pytest.mark.skip(reason=_NO_CUPY_REASON)
        for item in items:
            item.add_marker(skip)


@pytest.fixture(params=["numpy", "cupy"])
def xp(request):
    """The array module a test runs on: numpy, then cupy (skipped where it cannot run)."""
    if request.param == "numpy":
        return numpy
    cupy, reason = _cupy_or_skip_reason()
    if cupy is None:
        pytest.skip(reason)
    return cupy


@pytest.fixture
def rng():
    """A seeded host generator for test data (move the data with backend.to_device)."""
    return numpy.random.default_rng(1234)
