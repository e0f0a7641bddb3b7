"""Tests of minflow/checkpoint.py: exact round trips, atomic writes, and rejection without side effects."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy
import pytest

from minflow import backend
from minflow.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_meta, save_checkpoint
from minflow.nn.module import Module
from minflow.optim import SGD, Adam
from minflow.zoo import realnvp_2d

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _trained(n_layers=2, hidden=(8, 8), seed=0, steps=3, xp=numpy):
    """A small R2 model and its Adam after a few steps (non-zero params, moments, t)."""
    model = realnvp_2d(n_layers=n_layers, hidden=hidden, seed=seed).to(xp)
    opt = Adam(model.params, model.grads, lr=1e-2)
    x = backend.to_device(numpy.random.default_rng(seed + 100).standard_normal((32, 2)).astype(numpy.float32), xp)
    for _ in range(steps):
        model.zero_grads()
        model.nll_and_backward(x)
        opt.step()
    return model, opt


def _snapshot(model, opt=None):
    """Host copies of every parameter and optimizer state array."""
    snap = {f"p/{k}": backend.to_numpy(v).copy() for k, v in model.params.items()}
    if opt is not None:
        snap.update({f"o/{k}": backend.to_numpy(v).copy() for k, v in opt.state().items()})
    return snap


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        numpy.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _rewrite(path, change):
    """Rewrite a checkpoint with ``change(arrays, meta)`` applied (a hand-made file)."""
    with numpy.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays["meta"].tobytes())
    change(arrays, meta)
    arrays["meta"] = numpy.frombuffer(json.dumps(meta).encode(), dtype=numpy.uint8)
    with open(path, "wb") as f:
        numpy.savez(f, **arrays)


@pytest.fixture
def saved(tmp_path):
    """(path, snapshot) of a checkpoint of a trained model with Adam."""
    model, opt = _trained()
    path = str(tmp_path / "ck.npz")
    save_checkpoint(path, model, opt, extra={"epoch": 3})
    return path, _snapshot(model, opt)


@pytest.fixture
def fresh():
    """A model built like the saved one but initialised differently, with a fresh Adam."""
    model = realnvp_2d(n_layers=2, hidden=(8, 8), seed=7)
    return model, Adam(model.params, model.grads, lr=1e-2)


def _cupy_or_skip():
    try:
        return backend._module_for("cupy")
    except RuntimeError as err:
        pytest.skip(str(err))


@pytest.fixture(params=["numpy", "cupy"])
def xp(request):
    return numpy if request.param == "numpy" else _cupy_or_skip()


# -- round trips ------------------------------------------------------------------


def test_checkpoint_roundtrip_restores_params_and_adam_exactly(tmp_path, xp):
    model, opt = _trained(xp=xp)
    path = tmp_path / "ck.npz"
    save_checkpoint(path, model, opt)
    other = realnvp_2d(n_layers=2, hidden=(8, 8), seed=7).to(xp)
    other_opt = Adam(other.params, other.grads, lr=1e-2)
    ids = {k: id(v) for k, v in other.params.items()}
    assert load_checkpoint(path, other, other_opt) == {}
    _assert_same(_snapshot(other, other_opt), _snapshot(model, opt))
    assert other_opt.t == 3
    assert {k: id(v) for k, v in other.params.items()} == ids  # copied in place
    assert all(backend.get_array_module(v) is xp for v in other.params.values())
    # the restored optimizer still updates the model's own arrays: both continue identically
    x = backend.to_device(numpy.random.default_rng(5).standard_normal((16, 2)).astype(numpy.float32), xp)
    for m, o in ((model, opt), (other, other_opt)):
        m.zero_grads()
        m.nll_and_backward(x)
        o.step()
    _assert_same(_snapshot(other, other_opt), _snapshot(model, opt))


def test_checkpoint_roundtrip_sgd_momentum(tmp_path):
    model = realnvp_2d(n_layers=2, hidden=(8, 8), seed=0)
    opt = SGD(model.params, model.grads, lr=0.1, momentum=0.9)
    model.nll_and_backward(backend.to_device(numpy.random.default_rng(0).standard_normal((8, 2)).astype(numpy.float32)))
    opt.step()
    save_checkpoint(tmp_path / "ck.npz", model, opt)
    other = realnvp_2d(n_layers=2, hidden=(8, 8), seed=3)
    other_opt = SGD(other.params, other.grads, lr=0.1, momentum=0.9)
    load_checkpoint(tmp_path / "ck.npz", other, other_opt)
    _assert_same(_snapshot(other, other_opt), _snapshot(model, opt))
    assert other_opt.t == 1


def test_checkpoint_roundtrip_extra_with_arrays_and_rng_state(tmp_path):
    model, opt = _trained(steps=1)
    rng = numpy.random.default_rng(42)
    rng.standard_normal(3)
    extra = {
        "epoch": 12,
        "seed": 42,
        "history": {"step": [1, 2], "loss": [2.5, float("nan")], "seconds": 1.5},
        "lr": numpy.float32(0.5),
        "rng": rng.bit_generator.state,
        "test_nll": numpy.array([1.0, 2.0, 3.0]),
        "shape": (2, 3),
    }
    save_checkpoint(tmp_path / "ck.npz", model, opt, extra=extra)
    out = load_checkpoint(tmp_path / "ck.npz", model, opt)
    assert out["epoch"] == 12 and out["seed"] == 42 and out["lr"] == 0.5 and out["shape"] == [2, 3]
    assert out["history"]["step"] == [1, 2] and numpy.isnan(out["history"]["loss"][1])
    numpy.testing.assert_array_equal(out["test_nll"], [1.0, 2.0, 3.0])
    resumed = numpy.random.default_rng(0)
    resumed.bit_generator.state = out["rng"]
    numpy.testing.assert_array_equal(resumed.standard_normal(5), rng.standard_normal(5))


def test_checkpoint_file_layout_and_meta(saved):
    path, _ = saved
    with numpy.load(path, allow_pickle=False) as f:
        files = set(f.files)
        meta = json.loads(f["meta"].tobytes().decode("utf-8"))
        w0 = f["params/flow.0.net.linear0.W"]
    assert {"meta", "params/flow.0.net.linear0.W", "optim/m.flow.1.net.linear2.b", "optim/t"} <= files
    assert meta["format"] == "minflow-checkpoint" and meta["version"] == 1
    assert ["flow.0.net.linear0.W", [1, 8], "float32"] in meta["architecture"]["params"]
    assert len(meta["architecture"]["params"]) == 12 and meta["architecture"]["buffers"] == []
    assert meta["optimizer"]["class"] == "Adam" and meta["extra"] == {"epoch": 3}
    assert w0.shape == (1, 8) and w0.dtype == numpy.float32
    assert read_checkpoint_meta(path) == meta


def test_checkpoint_load_model_only_ignores_optimizer_state(saved, fresh):
    path, snap = saved
    model, _ = fresh
    assert load_checkpoint(path, model) == {"epoch": 3}
    _assert_same(_snapshot(model), {k: v for k, v in snap.items() if k.startswith("p/")})


def test_checkpoint_casts_to_the_model_dtype(saved):
    path, snap = saved
    model = realnvp_2d(n_layers=2, hidden=(8, 8), dtype=numpy.float64, seed=7)
    load_checkpoint(path, model)
    for k, v in model.params.items():
        assert v.dtype == numpy.float64
        numpy.testing.assert_array_equal(backend.to_numpy(v), snap[f"p/{k}"].astype(numpy.float64))


class _Stats(Module):
    """A module with buffers (an array and a Python bool)."""

    def __init__(self):
        super().__init__()
        self.add_param("w", numpy.zeros(3))
        self.running = numpy.zeros(3)
        self.initialized = False

    def _own_buffers(self):
        return {"running": self.running, "initialized": self.initialized}

    def _set_own_buffer(self, name, value):
        setattr(self, name, value)


def test_checkpoint_roundtrip_buffers(tmp_path):
    a = _Stats()
    a.params["w"][...] = [1.0, 2.0, 3.0]
    a.running[...] = [0.5, -0.5, 4.0]
    a.initialized = True
    save_checkpoint(tmp_path / "s.npz", a)
    b = _Stats()
    load_checkpoint(tmp_path / "s.npz", b)
    numpy.testing.assert_array_equal(b.params["w"], [1.0, 2.0, 3.0])
    numpy.testing.assert_array_equal(b.running, [0.5, -0.5, 4.0])
    assert b.initialized is True
    assert "describe" not in read_checkpoint_meta(tmp_path / "s.npz")["architecture"]


@pytest.mark.parametrize("describe", [None, {"name": "stats", "width": 3}])
def test_checkpoint_version1_with_a_describe_key_loads(tmp_path, describe):
    # version-1 files may carry architecture["describe"] (null, or a model's own summary): it is ignored
    a = _Stats()
    a.params["w"][...] = [1.0, 2.0, 3.0]
    save_checkpoint(tmp_path / "s.npz", a)
    with numpy.load(tmp_path / "s.npz", allow_pickle=False) as f:
        arrays = dict(f)
    meta = json.loads(bytes(arrays["meta"]).decode("utf-8"))
    meta["architecture"]["describe"] = describe
    arrays["meta"] = numpy.frombuffer(json.dumps(meta).encode("utf-8"), dtype=numpy.uint8)
    numpy.savez(tmp_path / "old.npz", **arrays)
    b = _Stats()
    load_checkpoint(tmp_path / "old.npz", b)
    numpy.testing.assert_array_equal(b.params["w"], [1.0, 2.0, 3.0])
    assert read_checkpoint_meta(tmp_path / "old.npz")["architecture"]["describe"] == describe


# -- rejection, with the model and optimizer left untouched ----------------------------


def _assert_rejected(path, model, opt, match):
    before = _snapshot(model, opt)
    t = opt.t if opt is not None else None
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path, model, opt)
    _assert_same(_snapshot(model, opt), before)
    assert opt is None or opt.t == t
    return str(info.value)


@pytest.mark.parametrize("keep", [0.5, 0.99, 20])
def test_checkpoint_rejects_truncated_file(saved, fresh, keep):
    path, _ = saved
    data = pathlib.Path(path).read_bytes()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)] if keep < 1 else data[:keep])
    message = _assert_rejected(path, *fresh, match="truncated, corrupted")
    assert path in message


def test_checkpoint_rejects_corrupted_parameter_byte(saved, fresh):
    path, snap = saved
    data = bytearray(pathlib.Path(path).read_bytes())
    at = bytes(data).find(snap["p/flow.1.net.linear1.W"].tobytes())
    assert at > 0
    data[at + 17] ^= 0x40
    pathlib.Path(path).write_bytes(bytes(data))
    _assert_rejected(path, *fresh, match=r"(?s)ck\.npz.*(CRC|corrupted)")


def test_checkpoint_random_byte_flips_are_caught_or_harmless(saved, fresh):
    """Every flipped byte is either detected, or sits in a field that holds no data (zip timestamps)."""
    path, snap = saved
    data = pathlib.Path(path).read_bytes()
    model, opt = fresh
    detected = 0
    for at in numpy.random.default_rng(0).choice(len(data), size=150, replace=False):
        broken = bytearray(data)
        broken[at] ^= 0xFF
        pathlib.Path(path).write_bytes(bytes(broken))
        try:
            load_checkpoint(path, model, opt)
        except CheckpointError:
            detected += 1
            continue
        _assert_same(_snapshot(model, opt), snap)
    assert detected > 100


def test_checkpoint_rejects_wrong_version(saved, fresh):
    path, _ = saved
    _rewrite(path, lambda arrays, meta: meta.update(version=2))
    _assert_rejected(path, *fresh, match="version 2; this minflow reads version 1")


def test_checkpoint_rejects_other_format(saved, fresh, tmp_path):
    path, _ = saved
    _rewrite(path, lambda arrays, meta: meta.update(format="something-else"))
    _assert_rejected(path, *fresh, match="format 'something-else'; expected 'minflow-checkpoint'")
    plain = str(tmp_path / "plain.npz")
    numpy.savez(plain, w=numpy.zeros(3))
    _assert_rejected(plain, *fresh, match="no 'meta' entry")
    single = str(tmp_path / "single.npy")
    numpy.save(single, numpy.zeros(3))
    _assert_rejected(single, *fresh, match="single .npy array")


def test_checkpoint_rejects_object_arrays_without_unpickling(saved, fresh):
    path, _ = saved

    def add_object_array(arrays, meta):
        arrays["params/flow.0.net.linear0.b"] = numpy.array([{"evil": 1}, None], dtype=object)

    _rewrite(path, add_object_array)
    _assert_rejected(path, *fresh, match="allow_pickle=False")


def test_checkpoint_rejects_missing_extra_array(saved, fresh):
    path, _ = saved
    _rewrite(path, lambda arrays, meta: meta.update(extra_arrays=["history"]))
    _assert_rejected(path, *fresh, match=r"inconsistent: meta lists extra arrays \['history'\]")


@pytest.mark.parametrize(
    "n_layers, hidden, expected",
    [
        (1, (8, 8), r"in the checkpoint but not in the model: flow\.1\.net\.linear0\.W"),
        (3, (8, 8), r"parameters missing from the checkpoint: flow\.2\.net\.linear0\.W"),
        (2, (8, 4), r"parameters flow\.0\.net\.linear1\.W: shape \(8, 8\) in the checkpoint, \(8, 4\) in the model"),
    ],
    ids=["fewer_layers", "more_layers", "other_hidden"],
)
def test_checkpoint_rejects_other_architecture(saved, n_layers, hidden, expected):
    path, _ = saved
    model = realnvp_2d(n_layers=n_layers, hidden=hidden, seed=7)
    opt = Adam(model.params, model.grads)
    message = _assert_rejected(path, model, opt, match=expected)
    assert "optimizer state" in message  # the optimizer's differences are listed too


def test_checkpoint_rejects_other_optimizer(saved, fresh, tmp_path):
    path, _ = saved
    model, _ = fresh
    _assert_rejected(path, model, SGD(model.params, model.grads), match="optimizer state is for Adam, not SGD")
    bare = str(tmp_path / "bare.npz")
    save_checkpoint(bare, *_trained(steps=1)[:1])
    _assert_rejected(bare, *fresh, match="no optimizer state was saved; pass optimizer=None")


def test_checkpoint_missing_file_is_file_not_found(tmp_path, fresh):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.npz", *fresh)


# -- atomic writes ------------------------------------------------------------------


def test_checkpoint_save_fsyncs_before_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    save_checkpoint(tmp_path / "ck.npz", _trained(steps=0)[0])
    assert events[:2] == ["fsync", "replace"]
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_checkpoint_interrupted_save_keeps_previous_checkpoint(saved, monkeypatch):
    path, snap = saved
    before = pathlib.Path(path).read_bytes()
    model, opt = _trained(seed=5)

    def dying_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-write

    monkeypatch.setattr(numpy, "savez", dying_savez)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, opt, extra={"epoch": 4})
    monkeypatch.undo()
    assert pathlib.Path(path).read_bytes() == before
    assert os.listdir(os.path.dirname(path)) == ["ck.npz"]  # the temporary file is gone
    other, other_opt = _trained(seed=9)
    assert load_checkpoint(path, other, other_opt) == {"epoch": 3}
    _assert_same(_snapshot(other, other_opt), snap)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_checkpoint_killed_save_keeps_previous_checkpoint(saved):
    path, snap = saved
    before = pathlib.Path(path).read_bytes()
    script = (
        "import os, signal, sys, numpy\n"
        "from minflow.checkpoint import save_checkpoint\n"
        "from minflow.zoo import realnvp_2d\n"
        "def dying_savez(f, **arrays):\n"
        "    f.write(b'PK\\x03\\x04 half a zip'); f.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "numpy.savez = dying_savez\n"
        "save_checkpoint(sys.argv[1], realnvp_2d(n_layers=2, hidden=(8, 8), seed=1))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", script, path], env=env, capture_output=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert pathlib.Path(path).read_bytes() == before
    leftovers = [n for n in os.listdir(os.path.dirname(path)) if n != "ck.npz"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".ck.npz.") and leftovers[0].endswith(".tmp")
    other, other_opt = _trained(seed=9)
    load_checkpoint(path, other, other_opt)
    _assert_same(_snapshot(other, other_opt), snap)


def test_checkpoint_save_rejects_unserialisable_extra_and_keeps_file(saved):
    path, _ = saved
    before = pathlib.Path(path).read_bytes()
    model, opt = _trained(seed=5)
    with pytest.raises(TypeError, match="extra must be JSON-able: set is not JSON-serialisable"):
        save_checkpoint(path, model, opt, extra={"bad": {1, 2}})
    with pytest.raises(TypeError, match="array nested inside extra"):
        save_checkpoint(path, model, opt, extra={"nested": {"a": numpy.zeros(2)}})
    with pytest.raises(TypeError, match="object array"):
        save_checkpoint(path, model, opt, extra={"objects": numpy.array([None, 1], dtype=object)})
    assert pathlib.Path(path).read_bytes() == before
    assert os.listdir(os.path.dirname(path)) == ["ck.npz"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_checkpoint_file_mode_follows_umask(tmp_path, umask):
    """A checkpoint gets the mode of any new file (0666 less the umask), as the JSON and figures do."""
    model, opt = _trained()
    old = os.umask(umask)
    try:
        path = tmp_path / "ck.npz"
        save_checkpoint(path, model, opt)
        save_checkpoint(path, model, opt)  # replacing a file keeps the rule
    finally:
        os.umask(old)
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~umask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]  # no temporary file left
