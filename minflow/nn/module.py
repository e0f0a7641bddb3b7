"""Module: the parameter container shared by every building block and flow layer.

A module owns named parameters (``params``) and their gradients (``grads``),
two dicts with the same keys and shapes, and may hold child modules. The
dicts of a parent include its children's entries under dotted names
(``"coupling.net.linear0.W"``) and share the same arrays, so an optimizer
that updates ``params`` in place updates every layer.

Gradients accumulate (``+=``) in every backward pass; ``zero_grads()``
resets them. An optimizer never zeroes them itself.

Each pass saves what its backward needs (``_save_cache``); inside a
``with no_caches():`` block nothing is saved, for passes that no backward
follows (sampling).
"""

import contextlib

from ..backend import get_array_module

__all__ = ["Module", "no_caches"]

_keep_caches = True  # False inside no_caches()


@contextlib.contextmanager
def no_caches():
    """Within this block no module keeps a cache: for passes that no backward follows (sampling).

    Each layer's activations are then freed as soon as the next layer has
    read them, so on a CPU the next arrays reuse memory still in its cache
    (R2's 10^4 samples in about 0.92x the time of keeping them). A backward
    of such a pass finds no cache and says so. The switch holds for the
    whole process (minflow runs its passes in one thread).
    """
    global _keep_caches
    before = _keep_caches
    _keep_caches = False
    try:
        yield
    finally:
        _keep_caches = before


class Module:
    """Base class: named parameters, their gradients, and child modules.

    Subclasses register parameters with ``add_param`` and children with
    ``add_child`` in ``__init__``.
    """

    def __init__(self):
        self._own_params = {}
        self._own_grads = {}
        self._children = {}

    # -- registration -------------------------------------------------------

    def add_param(self, name, value):
        """Register a parameter array and a zero gradient of its shape."""
        xp = get_array_module(value)
        self._own_params[name] = value
        self._own_grads[name] = xp.zeros_like(value)
        return value

    def add_child(self, name, module):
        """Register a child module; its parameters appear as ``name.<key>``."""
        self._children[name] = module
        return module

    def modules(self):
        """This module, then every descendant, depth first (to find or configure layers of one kind)."""
        yield self
        for child in self._children.values():
            yield from child.modules()

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module (``prefix``, "" by default) and every descendant, depth first."""
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    # -- the two dicts an optimizer sees --------------------------------------

    @property
    def params(self):
        """dict name -> array: this module's parameters and its children's ("child.key" for a child's)."""
        return self._gather("_own_params", "params")

    @property
    def grads(self):
        """dict name -> array, same keys and shapes as ``params``."""
        return self._gather("_own_grads", "grads")

    def first_param(self):
        """The first array of ``params`` (this module's own first, then its children's in order), or None.

        The same array as ``next(iter(self.params.values()))``, without building the dict (for a dtype or device).
        """
        for value in self._own_params.values():
            return value
        for child in self._children.values():
            value = child.first_param()
            if value is not None:
                return value
        return None

    def _gather(self, own, attribute):
        out = dict(getattr(self, own))
        for child_name, child in self._children.items():
            for key, value in getattr(child, attribute).items():
                out[f"{child_name}.{key}"] = value
        return out

    def zero_grads(self):
        """Set every gradient to zero (in place)."""
        for g in self._own_grads.values():
            g.fill(0)
        for child in self._children.values():
            child.zero_grads()

    def num_params(self):
        """Total number of scalar parameters."""
        return int(sum(p.size for p in self.params.values()))

    # -- state that is not a parameter (saved with the model) -----------------

    def buffers(self):
        """dict name -> array of non-trained state (running statistics, ...).

        Subclasses with such state override ``_own_buffers`` and
        ``_set_own_buffer``. Children's buffers appear under dotted names.
        """
        out = dict(self._own_buffers())
        for child_name, child in self._children.items():
            for key, value in child.buffers().items():
                out[f"{child_name}.{key}"] = value
        return out

    def set_buffer(self, name, value):
        """Set a buffer by its dotted name (used when loading a checkpoint)."""
        head, _, rest = name.partition(".")
        if rest and head in self._children:
            self._children[head].set_buffer(rest, value)
        else:
            self._set_own_buffer(name, value)

    def _own_buffers(self):
        return {}

    def _set_own_buffer(self, name, value):
        raise KeyError(f"{type(self).__name__} has no buffer named {name!r}.")

    # -- moving between dtypes and devices ------------------------------------

    def astype(self, dtype):
        """Convert every parameter (and gradient, buffer) to ``dtype``; returns self."""
        return self._map_arrays(lambda a: a.astype(dtype))

    def to(self, xp):
        """Move every array, fixed index arrays included, to ``xp``; returns self."""
        from ..backend import to_device

        self._map_arrays(lambda a: to_device(a, xp))
        self._move_fixed_arrays(xp)
        return self

    def _map_arrays(self, fn):
        for name in self._own_params:
            self._own_params[name] = fn(self._own_params[name])
            self._own_grads[name] = fn(self._own_grads[name])
        for name, value in self._own_buffers().items():
            self._set_own_buffer(name, fn(value))
        for child in self._children.values():
            child._map_arrays(fn)
        return self

    def _move_fixed_arrays(self, xp):
        """Move fixed non-parameter arrays (masks, index arrays) to ``xp``; override."""
        for child in self._children.values():
            child._move_fixed_arrays(xp)

    def _add_grads(self, grads):
        """Add each of ``grads`` (parameter name -> array of its shape) into that parameter's gradient."""
        for name, grad in grads.items():
            self._own_grads[name] += grad

    # -- caches -----------------------------------------------------------------

    def _take_cache(self, name, caller):
        """Return and release the cache ``name`` saved by a pass; error if none.

        A backward consumes its pass's cache, so memory is freed as soon as
        the gradient is computed, and a second backward is a clear error.
        """
        cache = getattr(self, "_caches", {}).pop(name, None)
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.{caller}() needs the cache of its {name} pass, "
                f"but {name}() has not been called since the last {caller}(). "
                f"Call {name}() first."
            )
        return cache

    def release_caches(self):
        """Drop every saved cache, here and in all children (frees activation memory)."""
        if hasattr(self, "_caches"):
            self._caches.clear()
        for child in self._children.values():
            child.release_caches()

    def _save_cache(self, name, cache):
        if not _keep_caches:
            return
        if not hasattr(self, "_caches"):
            self._caches = {}
        self._caches[name] = cache
