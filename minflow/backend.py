"""The one seam between minflow and its array library: NumPy or CuPy.

Every computing function takes its array module from its inputs,

    xp = get_array_module(x)

so a computation runs wherever its data lives and no global switch decides
it. The *default* backend (``MINFLOW_BACKEND=numpy|cupy`` or
``set_backend``) only decides where new parameters and samples are created.

Dtype policy: training runs in float32 (``DEFAULT_DTYPE``); gradient checks
run in float64 (``CHECK_DTYPE``). New arrays come from helpers that take
``(shape, dtype, rng)``; there is no global random state.

This is the only module that imports CuPy or branches on which library is in
use.
"""

import os

import numpy

__all__ = [
    "CHECK_DTYPE",
    "DEFAULT_DTYPE",
    "cpu_chunk",
    "get_array_module",
    "get_backend",
    "is_cupy_array",
    "log_sigmoid",
    "logsumexp",
    "make_rng",
    "normal",
    "rng_module",
    "set_backend",
    "sigmoid",
    "softplus",
    "to_device",
    "to_numpy",
    "uniform",
    "zeros",
]

DEFAULT_DTYPE = numpy.float32
CHECK_DTYPE = numpy.float64

_BACKENDS = ("numpy", "cupy")
_default_xp = None  # set lazily from MINFLOW_BACKEND on first use


def _import_cupy():
    """Import CuPy and check that a GPU is present; explain how to fix it if not."""
    try:
        import cupy
    except ImportError as err:
        raise RuntimeError(
            "MINFLOW_BACKEND=cupy needs CuPy, which is not installed. "
            "Install the build for your CUDA version, e.g. "
            "`pip install -r requirements-gpu.txt` (cupy-cuda12x), "
            "or use the NumPy backend: MINFLOW_BACKEND=numpy."
        ) from err
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing or broken
        raise RuntimeError(
            f"CuPy is installed but cannot reach a GPU ({err}). "
            "Check `nvidia-smi`, or use the NumPy backend: MINFLOW_BACKEND=numpy."
        ) from err
    if n_devices == 0:
        raise RuntimeError(
            "CuPy is installed but no NVIDIA GPU was found. Use the NumPy backend: MINFLOW_BACKEND=numpy."
        )
    return cupy


def _module_for(name):
    if name not in _BACKENDS:
        raise ValueError(
            f"Unknown backend {name!r}; expected one of {_BACKENDS}. Set MINFLOW_BACKEND=numpy or MINFLOW_BACKEND=cupy."
        )
    return numpy if name == "numpy" else _import_cupy()


def set_backend(name):
    """Choose where new parameters and samples are created: 'numpy' or 'cupy'."""
    global _default_xp
    _default_xp = _module_for(name)
    return _default_xp


def get_backend():
    """The default array module (``numpy`` or ``cupy``) for new arrays."""
    global _default_xp
    if _default_xp is None:
        _default_xp = _module_for(os.environ.get("MINFLOW_BACKEND", "numpy").lower())
    return _default_xp


def is_cupy_array(x):
    """True if ``x`` lives on a GPU (a ``cupy.ndarray``)."""
    return type(x).__module__.startswith("cupy")


def get_array_module(*arrays):
    """The array module (numpy or cupy) that the given arrays live in."""
    for a in arrays:
        if is_cupy_array(a):
            import cupy

            return cupy
    return numpy


def cpu_chunk(x, rows):
    """Rows of x to process at a time where rows are independent (sampling): ``rows`` on a CPU, all on a GPU.

    On a CPU a chunk's activations can stay in cache from one elementwise
    pass to the next; on a GPU a kernel's launch costs more than its memory
    traffic, so one pass over every row is fastest.
    """
    return len(x) if is_cupy_array(x) else int(rows)


def to_numpy(x):
    """A host NumPy copy (or view) of ``x``, wherever it lives."""
    if is_cupy_array(x):
        return x.get()
    return numpy.asarray(x)


def to_device(x, xp=None, dtype=None):
    """Move ``x`` to the module ``xp`` (default: the default backend)."""
    xp = xp or get_backend()
    if xp is numpy:
        return numpy.asarray(to_numpy(x), dtype=dtype)
    return xp.asarray(x, dtype=dtype)


def rng_module(rng):
    """The array module (numpy or cupy) whose arrays ``rng`` draws."""
    if type(rng).__module__.startswith("cupy"):
        import cupy

        return cupy
    return numpy


def make_rng(seed=None, xp=None):
    """A seeded random generator on ``xp`` (default: the default backend)."""
    xp = xp or get_backend()
    return xp.random.default_rng(seed)


def uniform(shape, low, high, dtype, rng):
    """Uniform(low, high) samples of ``shape`` and ``dtype`` from ``rng``."""
    return rng.uniform(low, high, size=shape).astype(dtype, copy=False)


def normal(shape, dtype, rng, scale=1.0):
    """Normal(0, scale^2) samples of ``shape`` and ``dtype`` from ``rng``."""
    return (scale * rng.standard_normal(size=shape)).astype(dtype, copy=False)


def zeros(shape, dtype, xp=None):
    """Zeros of ``shape`` and ``dtype`` on ``xp`` (default: the default backend)."""
    xp = xp or get_backend()
    return xp.zeros(shape, dtype=dtype)


# Stable scalar functions used throughout (each follows its input's module).


def softplus(a):
    """log(1 + exp(a)) without overflow: max(a, 0) + log1p(exp(-|a|))."""
    xp = get_array_module(a)
    return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))


def sigmoid(a):
    """1 / (1 + exp(-a)) without overflow, via tanh: 0.5 * (1 + tanh(a / 2))."""
    xp = get_array_module(a)
    return 0.5 * (1 + xp.tanh(0.5 * a))


def log_sigmoid(a):
    """log sigmoid(a) = -softplus(-a), stable for large |a|."""
    return -softplus(-a)


def logsumexp(a, axis=-1):
    """log(sum(exp(a), axis)) computed as m + log(sum(exp(a - m))), m = max."""
    xp = get_array_module(a)
    m = xp.max(a, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    out = xp.log(xp.sum(xp.exp(a - m), axis=axis, keepdims=True)) + m
    return xp.squeeze(out, axis=axis)
