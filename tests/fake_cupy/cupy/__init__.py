"""A stand-in for CuPy on the CPU: NumPy underneath, CuPy's rules on top.

    PYTHONPATH=tests/fake_cupy MINFLOW_BACKEND=cupy python -m pytest -m "not lessons"

finds, without a GPU, the mistakes that make code fail under real CuPy
because host and device arrays meet. Its arrays (``cupy.ndarray``, a NumPy
subclass whose module is ``cupy``, so ``backend.is_cupy_array`` sees a device
array) follow these rules of CuPy's:

- an operation on a device array refuses a host array (``numpy.ndarray`` with
  at least one dimension) among its operands, with CuPy's TypeError: host data
  fed to a model on the GPU, or a device result compared with host values by
  ``numpy.testing``;
- ``a[...] = b`` refuses a host array ``b`` (CuPy's setitem fills with
  scalars only: "non-scalar numpy.ndarray cannot be used for fill");
- ``numpy.asarray`` / ``numpy.array`` / ``numpy.asanyarray`` refuse a device
  array, as CuPy's "Implicit conversion to a NumPy array is not allowed" (the
  three are wrapped in the ``numpy`` module when this one is imported);
- ``cupy.asarray`` / ``cupy.array`` move host data to the device, ``.get()`` /
  ``cupy.asnumpy`` bring it back;
- a reduction over a whole array gives a 0-d device array, not a host scalar;
- ``cupy.random.default_rng`` gives a generator with CuPy's methods only
  (``random``, ``uniform``, ``integers``, ``standard_normal``): no
  ``permutation``, ``choice`` or NumPy-style ``bit_generator.state``.

What it cannot see: conversions inside NumPy's own C code, CuPy functions
that NumPy has and CuPy lacks, kernel compilation, float32 rounding that differs on the GPU, and
speed. It is a test tool, never installed: only ``PYTHONPATH`` puts it first.
"""

import types

import numpy

__version__ = "0.0+fake (NumPy on the CPU)"

_TRANSFERS = ("array", "asarray", "asanyarray")  # the functions that take host data to the device


class ndarray(numpy.ndarray):
    """A "device" array: a NumPy array that refuses host operands, as cupy.ndarray does."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _refuse_host((inputs, out), f"{ufunc.__name__}")
        if out is not None:
            kwargs["out"] = tuple(_host_view(o) for o in out)
        result = getattr(ufunc, method)(*_host_tree(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _device_tree(result)

    def __array_function__(self, func, types, args, kwargs):
        _refuse_host((args, kwargs), func.__name__)
        return _device_tree(func(*_host_tree(args), **_host_tree(kwargs)))

    def __setitem__(self, index, value):
        if isinstance(value, numpy.ndarray) and not isinstance(value, ndarray) and value.ndim > 0:
            raise ValueError(
                "non-scalar numpy.ndarray cannot be used for fill (fake CuPy: a host array written into a "
                "device array; move it with backend.to_device first)"
            )
        super().__setitem__(index, value)

    def get(self):
        """A host copy (numpy.ndarray), as cupy.ndarray.get."""
        return numpy.array(self.view(numpy.ndarray))


def _host_view(x):
    return x.view(numpy.ndarray) if isinstance(x, ndarray) else x


def _host_tree(x):
    """``x`` with every device array viewed as a plain numpy.ndarray (lists, tuples, dicts walked)."""
    if isinstance(x, (list, tuple)):
        return type(x)(_host_tree(v) for v in x)
    if isinstance(x, dict):
        return {k: _host_tree(v) for k, v in x.items()}
    return _host_view(x)


def _device_tree(x):
    """``x`` with every numpy.ndarray and NumPy scalar made a device array (tuples walked)."""
    if isinstance(x, tuple):
        return type(x)(*map(_device_tree, x)) if hasattr(x, "_fields") else tuple(map(_device_tree, x))
    if isinstance(x, list):
        return [_device_tree(v) for v in x]
    if isinstance(x, numpy.ndarray):
        return x.view(ndarray)
    if isinstance(x, numpy.generic):
        return numpy.asarray(x).view(ndarray)
    return x


def _refuse_host(tree, what):
    """CuPy's TypeError where a host array (numpy.ndarray with ndim >= 1) is among the operands."""
    if isinstance(tree, (list, tuple)):
        for v in tree:
            _refuse_host(v, what)
    elif isinstance(tree, dict):
        for v in tree.values():
            _refuse_host(v, what)
    elif isinstance(tree, numpy.ndarray) and not isinstance(tree, ndarray) and tree.ndim > 0:
        raise TypeError(
            f"Unsupported type {type(tree)} (fake CuPy: a host array of shape {tree.shape} met a device "
            f"array in {what}; move it with backend.to_device, or bring the result back with backend.to_numpy)"
        )


def _device_function(name, func):
    """NumPy's ``func`` as a CuPy function: device arrays in and out; host arrays refused, except by transfers."""

    def device_func(*args, **kwargs):
        if name in _TRANSFERS and args and not isinstance(args[0], ndarray):
            return numpy.array(*args, **kwargs).view(ndarray)  # a copy, as a host-to-device transfer is
        _refuse_host((args, kwargs), name)
        return _device_tree(func(*_host_tree(args), **_host_tree(kwargs)))

    device_func.__name__ = name
    return device_func


class _DeviceNamespace(types.ModuleType):
    """A NumPy namespace (numpy, numpy.linalg, ...) whose functions take and give device arrays."""

    def __init__(self, name, host):
        super().__init__(name)
        self._host = host

    def __getattr__(self, name):
        attr = getattr(self._host, name)
        if isinstance(attr, types.ModuleType) or not callable(attr) or isinstance(attr, type):
            return attr  # constants, dtypes, submodules
        return _device_function(name, attr)


linalg = _DeviceNamespace("cupy.linalg", numpy.linalg)
lib = types.SimpleNamespace(stride_tricks=_DeviceNamespace("cupy.lib.stride_tricks", numpy.lib.stride_tricks))
_numpy_namespace = _DeviceNamespace("cupy", numpy)


def __getattr__(name):
    """Any other NumPy name, as a device function (module-level __getattr__, PEP 562)."""
    return getattr(_numpy_namespace, name)


def _refuse_implicit(func):
    """numpy.asarray and kin, refusing a device array as CuPy's __array__ does."""

    def host_func(a, *args, **kwargs):
        if isinstance(a, ndarray):
            raise TypeError(
                "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy "
                "array explicitly. (fake CuPy: use backend.to_numpy)"
            )
        return func(a, *args, **kwargs)

    host_func.__name__ = func.__name__
    return host_func


numpy.asarray, numpy.array, numpy.asanyarray = map(_refuse_implicit, (numpy.asarray, numpy.array, numpy.asanyarray))


def asnumpy(x):
    """A host copy of ``x``."""
    return x.get() if isinstance(x, ndarray) else numpy.asarray(x)


def get_array_module(*arrays):
    return __import__(__name__) if any(isinstance(a, ndarray) for a in arrays) else numpy


class Generator:
    """cupy.random.Generator's methods (CuPy 13/14), drawn by NumPy's PCG64."""

    def __init__(self, seed=None):
        self._rng = numpy.random.default_rng(seed)

    def random(self, size=None, dtype=numpy.float64):
        return _device_tree(numpy.asarray(self._rng.random(size)).astype(dtype))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=numpy.float64):
        _refuse_host((low, high), "Generator.uniform")
        return _device_tree(numpy.asarray(self._rng.uniform(_host_view(low), _host_view(high), size)).astype(dtype))

    def integers(self, low, high=None, size=None, dtype=numpy.int64, endpoint=False):
        return _device_tree(numpy.asarray(self._rng.integers(low, high, size, dtype=dtype, endpoint=endpoint)))

    def standard_normal(self, size=None, dtype=numpy.float64):
        return _device_tree(numpy.asarray(self._rng.standard_normal(size)).astype(dtype))


random = types.SimpleNamespace(Generator=Generator, default_rng=Generator)


class _Device:
    def __init__(self, device_id=0):
        self.id = device_id

    def synchronize(self):
        pass


cuda = types.SimpleNamespace(
    Device=_Device,
    runtime=types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDeviceProperties=lambda device_id: {"name": b"fake CuPy (NumPy on the CPU)"},
    ),
)
