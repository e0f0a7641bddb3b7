"""Checkpoints: a model's parameters, buffers, optimizer state and run metadata in one file.

Format "minflow-checkpoint", version 1: an uncompressed ``.npz`` (a zip of
``.npy`` arrays written by ``numpy.savez``) holding arrays only, read back
with ``allow_pickle=False``, so loading a file never runs code:

    params/<name>    each array of ``model.params`` (dotted names)
    buffers/<name>   each array of ``model.buffers()`` (running statistics, ...)
    optim/<name>     each array of ``optimizer.state()``, if an optimizer was saved
    extra/<key>      each top-level array value of ``extra``
    meta             UTF-8 JSON as a uint8 array:
                     {"format": "minflow-checkpoint", "version": 1,
                      "architecture": {"params":  [[name, shape, dtype], ...],
                                       "buffers": [[name, shape, dtype], ...]},
                      "optimizer": {"class": "Adam", "state": [[name, shape, dtype], ...]} or null,
                      "extra": {the JSON part of extra}, "extra_arrays": [keys]}

``extra`` is a dict for the run's own state: epoch, seeds, loss histories.
Its array values (NumPy or CuPy) are stored as ``extra/<key>``; everything
else must be JSON-able (NumPy scalars are converted; tuples come back as
lists). A NumPy generator's state is a JSON-able dict of ints:

    extra = {"epoch": 12, "rng": rng.bit_generator.state}     # save
    rng.bit_generator.state = load_checkpoint(...)["rng"]     # resume

Writes are atomic: the file is written to a temporary file in the same
folder (``.<name>.<random>.tmp``, given the usual mode of a new file, 0666
less the umask, e.g. 0644, so a class can share checkpoints like any other
output), flushed and fsynced, then renamed over ``path``, so a crash leaves the previous checkpoint intact (and at worst a
stray ``.tmp`` file). A version-1 file may also carry
``architecture["describe"]`` (a model summary, null in practice); loading
ignores it. Loading checks the whole file against the model and
optimizer before it changes anything, then copies the values into the
existing arrays (cast to their dtype and device), so an optimizer built on
``model.params`` keeps working.
"""

import json
import os
import tempfile

import numpy

from .backend import get_array_module, is_cupy_array, to_device, to_numpy

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CheckpointError",
    "load_checkpoint",
    "new_file_mode",
    "read_checkpoint_meta",
    "save_checkpoint",
]

FORMAT_NAME = "minflow-checkpoint"
FORMAT_VERSION = 1
_GROUPS = ("params", "buffers", "optim", "extra")


class CheckpointError(ValueError):
    """A checkpoint file is damaged, of another format or version, or does not fit the model."""


# -- saving -------------------------------------------------------------------


def _is_array(value):
    return isinstance(value, numpy.ndarray) or is_cupy_array(value)


def _host_arrays(arrays, what):
    """name -> host NumPy array; refuses object arrays (they would need pickle)."""
    out = {}
    for name, value in arrays.items():
        a = to_numpy(value)
        if a.dtype.hasobject:
            raise TypeError(f"{what} {name!r} is an object array; checkpoints hold numeric arrays only.")
        out[name] = a
    return out


def _describe_arrays(arrays):
    return [[name, list(a.shape), str(a.dtype)] for name, a in arrays.items()]


def _json_default(value):
    """json.dumps hook: NumPy scalars become Python numbers; anything else is an error."""
    if isinstance(value, numpy.generic):
        return value.item()
    if _is_array(value):
        raise TypeError(
            "an array nested inside extra; put arrays at the top level of extra "
            "(they are stored as extra/<key>) or convert them with .tolist()"
        )
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def save_checkpoint(path, model, optimizer=None, extra=None):
    """Write ``model`` (and ``optimizer``, ``extra``) to ``path`` atomically.

    Args:
        path: the file to write (replaced if it exists; its folder is created).
            Conventionally ends in ``.npz``; written exactly as named.
        model: a Module (``params``, ``buffers()``).
        optimizer: an optimizer with ``state()`` (e.g. ``Adam``), or None.
        extra: dict with str keys of JSON-able values and top-level arrays,
            e.g. ``{"epoch": 3, "history": hist, "rng": rng.bit_generator.state}``.
    """
    extra = {} if extra is None else extra
    if not isinstance(extra, dict) or not all(isinstance(k, str) for k in extra):
        raise TypeError(f"extra must be a dict with str keys or None; got {type(extra).__name__}.")
    params = _host_arrays(model.params, "parameter")
    buffers = _host_arrays(model.buffers(), "buffer")
    optim = _host_arrays(optimizer.state(), "optimizer state") if optimizer is not None else {}
    extra_arrays = _host_arrays({k: v for k, v in extra.items() if _is_array(v)}, "extra")
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "architecture": {
            "params": _describe_arrays(params),
            "buffers": _describe_arrays(buffers),
        },
        "optimizer": None
        if optimizer is None
        else {"class": type(optimizer).__name__, "state": _describe_arrays(optim)},
        "extra": {k: v for k, v in extra.items() if k not in extra_arrays},
        "extra_arrays": list(extra_arrays),
    }
    try:
        text = json.dumps(meta, default=_json_default)
    except (TypeError, ValueError) as err:
        raise TypeError(f"Cannot save checkpoint {path}: extra must be JSON-able: {err}.") from err
    arrays = {"meta": numpy.frombuffer(text.encode("utf-8"), dtype=numpy.uint8)}
    for group, named in (("params", params), ("buffers", buffers), ("optim", optim), ("extra", extra_arrays)):
        arrays.update({f"{group}/{name}": a for name, a in named.items()})
    _write_atomic(os.fspath(path), arrays)


def _write_atomic(path, arrays):
    """numpy.savez into a temporary file in path's folder, fsync, then rename over path."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.fchmod(fd, new_file_mode())  # mkstemp's 0600 would keep the file from everyone else
        with os.fdopen(fd, "wb") as f:
            numpy.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them the checkpoint
        os.replace(tmp, path)
    except BaseException:
        os.remove(tmp)
        raise
    _fsync_folder(folder)


def new_file_mode():
    """The mode ``open()`` gives a new file: 0666 less the process umask (read by setting it and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX); best effort where folders cannot be fsynced."""
    if not hasattr(os, "O_DIRECTORY"):
        return  # Windows: os.replace is as durable as it gets
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (e.g. network mounts) refuse fsync on a folder; the file itself is synced
    finally:
        os.close(fd)


# -- reading and checking ---------------------------------------------------------


def _read_file(path):
    """Every array in the file and the decoded meta; CheckpointError if anything is off."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"Checkpoint {path} does not exist.")
    with open(path, "rb") as f:
        head = f.read(6)
    if not head.startswith((b"PK\x03\x04", b"\x93NUMPY")):  # zip (.npz) or .npy signature
        raise CheckpointError(
            f"{path} is not a {FORMAT_NAME} file: an .npz file starts with the zip signature b'PK\\x03\\x04', "
            f"this one {'is empty' if not head else f'starts with {head!r}'}. It is damaged, or another kind of file."
        )
    try:
        loaded = numpy.load(path, allow_pickle=False)
        if isinstance(loaded, numpy.lib.npyio.NpzFile):
            with loaded:
                arrays = {key: loaded[key] for key in loaded.files}
    except Exception as err:  # any failure to decode an untrusted file means the file is bad
        raise CheckpointError(
            f"Cannot read checkpoint {path}: {type(err).__name__}: {err}. "
            "The file is truncated, corrupted, or not a minflow checkpoint."
        ) from err
    if not isinstance(loaded, numpy.lib.npyio.NpzFile):
        raise CheckpointError(f"{path} holds a single .npy array, not a {FORMAT_NAME} .npz file.")
    meta = _decode_meta(path, arrays.pop("meta", None))
    groups = {g: {} for g in _GROUPS}
    for key, a in arrays.items():
        group, sep, name = key.partition("/")
        if not sep or group not in groups:
            raise CheckpointError(f"{path} has an unexpected entry {key!r}; expected meta and {_GROUPS}/<name>.")
        groups[group][name] = a
    extra_names = meta["extra_arrays"]
    if sorted(extra_names) != sorted(groups["extra"]) or set(extra_names) & set(meta["extra"]):
        raise CheckpointError(
            f"{path} is inconsistent: meta lists extra arrays {sorted(extra_names)} "
            f"but the file holds {sorted(groups['extra'])}."
        )
    return meta, groups


def _decode_meta(path, meta_array):
    if meta_array is None:
        raise CheckpointError(f"{path} has no 'meta' entry: it is not a {FORMAT_NAME} file.")
    if meta_array.dtype != numpy.uint8 or meta_array.ndim != 1:
        raise CheckpointError(f"{path}: 'meta' must be a 1-d uint8 array; got {meta_array.dtype} {meta_array.shape}.")
    try:
        meta = json.loads(meta_array.tobytes().decode("utf-8"))
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise CheckpointError(f"{path}: 'meta' is not valid UTF-8 JSON ({err}).") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{path} has format {found!r}; expected {FORMAT_NAME!r}.")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is {FORMAT_NAME} version {meta.get('version')!r}; this minflow reads version "
            f"{FORMAT_VERSION}. Use the minflow version that wrote it."
        )
    schema = {"architecture": dict, "optimizer": (dict, type(None)), "extra": dict, "extra_arrays": list}
    for key, kind in schema.items():
        if not isinstance(meta.get(key), kind):
            raise CheckpointError(f"{path}: meta field {key!r} is missing or malformed.")
    if not all(isinstance(name, str) for name in meta["extra_arrays"]):
        raise CheckpointError(f"{path}: meta field 'extra_arrays' must list str keys.")
    return meta


def read_checkpoint_meta(path):
    """The checkpoint's meta dict (format, architecture, optimizer, extra) without loading it.

    Useful to rebuild the right model (``meta["architecture"]["params"]`` lists
    every parameter's name, shape and dtype) before calling ``load_checkpoint``. Checks the file like ``load_checkpoint``.
    """
    return _read_file(os.fspath(path))[0]


def _listed(items, limit=20):
    """At most ``limit`` items joined by commas, then how many more."""
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _mismatches(what, owner, current, saved):
    """Lines naming what is missing or unexpected in the file, and every shape difference."""
    lines = []
    missing = [n for n in current if n not in saved]
    unexpected = [n for n in saved if n not in current]
    if missing:
        lines.append(f"{what} missing from the checkpoint: {_listed(missing)}")
    if unexpected:
        lines.append(f"{what} in the checkpoint but not in the {owner}: {_listed(unexpected)}")
    shapes = [
        f"{what} {name}: shape {saved[name].shape} in the checkpoint, {tuple(numpy.shape(a))} in the {owner}"
        for name, a in current.items()
        if name in saved and tuple(numpy.shape(a)) != saved[name].shape
    ]
    lines += shapes[:20]
    if len(shapes) > 20:
        lines.append(f"... and {len(shapes) - 20} more {what} of another shape")
    return lines


def _like(value, target):
    """``value`` (host array) as an array on target's device with target's dtype."""
    return to_device(value, get_array_module(target), dtype=target.dtype)


def load_checkpoint(path, model, optimizer=None):
    """Restore ``model`` (and ``optimizer``) from ``path``; return the saved ``extra``.

    Everything is checked first: format and version, file integrity, and
    that the checkpoint's parameters, buffers and optimizer state have the
    model's (optimizer's) names and shapes. On any error nothing is changed.
    Values are then copied into the existing arrays (``param[...] = value``),
    cast to their dtype and device, so references held elsewhere (an
    optimizer's ``params``) stay valid.

    Args:
        path: a file written by ``save_checkpoint``.
        model: a Module built like the saved one (same names and shapes).
        optimizer: an optimizer over ``model.params`` to restore, or None to
            ignore any saved optimizer state (e.g. for sampling).

    Returns:
        extra: the dict given to ``save_checkpoint`` (arrays as host NumPy
        arrays; tuples as lists); ``{}`` if none was given.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError (a ValueError): damaged file, other format or
            version, or a model/optimizer that does not match (the message
            lists every difference).
    """
    path = os.fspath(path)
    meta, groups = _read_file(path)
    params, buffers = model.params, model.buffers()
    problems = _mismatches("parameters", "model", params, groups["params"])
    problems += _mismatches("buffers", "model", buffers, groups["buffers"])
    state = None
    if optimizer is not None:
        saved = meta["optimizer"]
        if saved is None:
            problems.append("no optimizer state was saved; pass optimizer=None to load the model only")
        elif saved.get("class") != type(optimizer).__name__:
            problems.append(f"optimizer state is for {saved.get('class')}, not {type(optimizer).__name__}")
        else:
            state = optimizer.state()
            problems += _mismatches("optimizer state", "optimizer", state, groups["optim"])
    if problems:
        raise CheckpointError(
            f"Checkpoint {path} does not fit this model:\n  " + "\n  ".join(problems) + "\n"
            "Build the model (and optimizer) with the same settings as the saved one."
        )
    # convert everything first (a failure here still leaves the model untouched), then copy
    new_params = {n: _like(groups["params"][n], p) for n, p in params.items()}
    new_buffers = {
        n: _like(groups["buffers"][n], b) if _is_array(b) else type(b)(groups["buffers"][n].item())
        for n, b in buffers.items()
    }
    new_state = {n: _like(groups["optim"][n], s) for n, s in state.items()} if state is not None else None
    for name, p in params.items():
        p[...] = new_params[name]
    for name, b in new_buffers.items():
        model.set_buffer(name, b)
    if new_state is not None:
        optimizer.load_state(new_state)
    extra = dict(meta["extra"])
    extra.update(groups["extra"])
    return extra
