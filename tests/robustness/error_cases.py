"""The bad inputs of docs/errors.md, each a call that must fail with a clear message.

One list feeds both the test (``test_errors.py``: every case raises its
exception, and the message names the argument) and the table
(``tools/errors_table.py`` writes docs/errors.md from the messages the code
actually gives, and a test checks that the committed file matches), so the
documentation cannot drift from the code.

A case is ``Case(area, what, call, exc, names)``: ``call()`` must raise
``exc`` (or a subclass) with a message containing every string of
``names`` (the argument it is about, what was expected).
"""

import collections
import contextlib
import io
import os

import numpy

from minflow.__main__ import main
from minflow.backend import make_rng, set_backend, to_device
from minflow.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minflow.data.digits import load_digits, train_val_split
from minflow.data.energy import get_energy
from minflow.data.mnist import IMAGES_MAGIC, load_mnist, read_idx
from minflow.data.toy2d import get_toy
from minflow.diagnostics import NonFiniteError
from minflow.distributions import StandardNormal
from minflow.flows import AffineCoupling, Flow, Permutation
from minflow.flows.actnorm import ActNorm
from minflow.flows.factor_out import FactorOut
from minflow.flows.image_coupling import ImageAffineCoupling
from minflow.flows.image_masks import channel_mask, checkerboard_mask
from minflow.flows.invertible_linear import InvertibleLinear, InvertibleLinearLU
from minflow.flows.planar import Planar
from minflow.flows.preprocessing import Logit, dequantize
from minflow.flows.radial import Radial
from minflow.flows.squeeze import Squeeze
from minflow.model import FlowModel
from minflow.optim import Adam
from minflow.train import TrainingDiverged, fit, fit_samples
from minflow.zoo.d8 import d8
from minflow.zoo.p2 import planar_2d
from minflow.zoo.r2 import realnvp_2d

__all__ = ["Case", "CommandLineError", "build_cases", "run_case"]

Case = collections.namedtuple("Case", "area what call exc names")

F32 = numpy.float32


def _normal(shape, seed=0, dtype=F32):
    return numpy.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _with(x, index, value):
    x = x.copy()
    x[index] = value
    return x


def _r2():
    return realnvp_2d(n_layers=2, hidden=(8, 8))


def _expanding_r2():
    """A small R2 whose first coupling scales x[1] by e (s_raw = 5, t = 0): 3e38 * e overflows float32."""
    model = _r2()
    model.flow[0].net.params["linear2.b"][...] = to_device(numpy.array([5.0, 0.0]))
    return model


def _model_cases():
    m = _r2()
    x = _normal((4, 2))
    area = "model"
    return [
        Case(
            area,
            "`log_prob(x)`, x of shape (4, 3) for a 2-D model",
            lambda: m.log_prob(_normal((4, 3))),
            ValueError,
            ["x", "(N, 2)", "(4, 3)"],
        ),
        Case(
            area,
            "`log_prob(x)`, x of rank 1, shape (2,)",
            lambda: m.log_prob(_normal((2,))),
            ValueError,
            ["x", "(N, 2)", "(2,)"],
        ),
        Case(
            area,
            "`log_prob(x)`, x of rank 3, shape (4, 1, 2)",
            lambda: m.log_prob(_normal((4, 1, 2))),
            ValueError,
            ["x", "(4, 1, 2)"],
        ),
        Case(
            area,
            "`log_prob(x)`, x an integer array",
            lambda: m.log_prob(numpy.ones((4, 2), dtype=numpy.int64)),
            TypeError,
            ["x", "float", "int64"],
        ),
        Case(area, "`log_prob(x)`, x a Python list", lambda: m.log_prob([[0.0, 1.0]]), TypeError, ["x", "list"]),
        Case(
            area,
            "`log_prob(x)`, x holding a NaN",
            lambda: m.log_prob(_with(x, (1, 0), numpy.nan)),
            ValueError,
            ["x", "NaN"],
        ),
        Case(
            area,
            "`log_prob(x)`, x holding an infinity",
            lambda: m.log_prob(_with(x, (2, 1), numpy.inf)),
            ValueError,
            ["x", "infinite"],
        ),
        Case(
            area,
            "`log_prob(x)`, an empty batch (0, 2)",
            lambda: m.log_prob(numpy.zeros((0, 2), F32)),
            ValueError,
            ["x", "empty", "N = 0"],
        ),
        Case(
            area,
            "`log_prob(x)`, finite x of 3e38 (float32): a coupling overflows",
            lambda: _expanding_r2().log_prob(to_device(numpy.full((2, 2), 3e38, F32))),
            NonFiniteError,
            ["layer 0 (AffineCoupling)", "output"],
        ),
        Case(
            area,
            "`nll_and_backward(x)`, x of shape (8, 3)",
            lambda: m.nll_and_backward(_normal((8, 3))),
            ValueError,
            ["x", "(N, 2)", "(8, 3)"],
        ),
        Case(
            area,
            "`nll_and_backward(x)`, x an integer array",
            lambda: m.nll_and_backward(numpy.ones((8, 2), dtype=numpy.int32)),
            TypeError,
            ["x", "float"],
        ),
        Case(area, "`sample(n)`, n = 0", lambda: m.sample(0), ValueError, ["n", "positive integer", "0"]),
        Case(area, "`sample(n)`, n = 2.5", lambda: m.sample(2.5), ValueError, ["n", "positive integer", "2.5"]),
        Case(
            area, "`sample(n)`, n = '3' (a string)", lambda: m.sample("3"), TypeError, ["n", "positive integer", "str"]
        ),
        Case(area, "`sample(n)`, n = None", lambda: m.sample(None), TypeError, ["n", "NoneType"]),
        Case(
            area,
            "`sample(n, temperature=0)`",
            lambda: m.sample(4, temperature=0.0),
            ValueError,
            ["temperature", "positive"],
        ),
        Case(
            area,
            "`sample(n, temperature=nan)`",
            lambda: m.sample(4, temperature=float("nan")),
            ValueError,
            ["temperature", "nan"],
        ),
        Case(area, "`sample(n, dtype=int32)`", lambda: m.sample(4, dtype=numpy.int32), TypeError, ["dtype", "float"]),
        Case(area, "`sample_and_log_prob(n)`, n = -1", lambda: m.sample_and_log_prob(-1), ValueError, ["n", "-1"]),
        Case(
            area,
            "`reverse_kl_and_backward(energy, n)`, n = 0",
            lambda: m.reverse_kl_and_backward(get_energy("U1"), 0, None),
            ValueError,
            ["n", "0"],
        ),
        Case(
            area,
            "`reverse_kl_and_backward(energy, n)`, energy without `grad`",
            lambda: m.reverse_kl_and_backward(object(), 4, None),
            TypeError,
            ["energy", "grad"],
        ),
        Case(
            area,
            "`bits_per_dim(log_prob, n_levels=0)`",
            lambda: m.bits_per_dim(numpy.zeros(3), n_levels=0),
            ValueError,
            ["n_levels", "0"],
        ),
        Case(
            area,
            "`FlowModel(flow, base)`, flow a list of layers",
            lambda: FlowModel([m.flow[0]], StandardNormal((2,))),
            TypeError,
            ["flow", "Bijection", "list"],
        ),
        Case(
            area,
            "`FlowModel(flow, base)`, base without `log_prob`",
            lambda: FlowModel(m.flow, object()),
            TypeError,
            ["base", "log_prob"],
        ),
        Case(
            area,
            "`FlowModel(flow, base, event_shape=(3,))` over a 2-D base",
            lambda: FlowModel(m.flow, StandardNormal((2,)), (3,)),
            ValueError,
            ["event_shape", "(3,)", "(2,)"],
        ),
    ]


def _training_cases():
    m = _r2()
    opt = Adam(m.params, m.grads)

    def loss(step):
        return m.nll_and_backward(to_device(_normal((8, 2), step)))  # on the model's (default) backend

    def blows_up(step):
        if step == 2:  # one coupling's last layer blown up mid-training
            m.flow[1].net.params["linear2.W"][...] = 3e38
        return loss(step)

    area = "training"
    return [
        Case(
            area,
            "`fit(n_steps=0)`",
            lambda: fit(m, loss, 0, opt, progress=False),
            ValueError,
            ["n_steps", "positive integer", "0"],
        ),
        Case(area, "`fit(n_steps=-5)`", lambda: fit(m, loss, -5, opt, progress=False), ValueError, ["n_steps", "-5"]),
        Case(
            area, "`fit(n_steps=2.5)`", lambda: fit(m, loss, 2.5, opt, progress=False), ValueError, ["n_steps", "2.5"]
        ),
        Case(
            area,
            "`fit(log_every=0)`",
            lambda: fit(m, loss, 3, opt, log_every=0, progress=False),
            ValueError,
            ["log_every", "0"],
        ),
        Case(
            area,
            "`fit(loss_and_backward=None)`",
            lambda: fit(m, None, 3, opt, progress=False),
            TypeError,
            ["loss_and_backward", "NoneType"],
        ),
        Case(
            area,
            "`fit(optimizer=None)`",
            lambda: fit(m, loss, 3, None, progress=False),
            TypeError,
            ["optimizer", "step()"],
        ),
        Case(
            area,
            "`fit_samples(batch_size=0)`",
            lambda: fit_samples(m, lambda n, rng: _normal((n, 2)), 3, batch_size=0, progress=False),
            ValueError,
            ["batch_size", "0"],
        ),
        Case(
            area,
            "`fit_samples(sample)`, sample returns shape (n, 3)",
            lambda: fit_samples(m, lambda n, rng: _normal((n, 3)), 3, batch_size=4, progress=False),
            ValueError,
            ["sample(batch_size, rng)", "(N, 2)", "(4, 3)"],
        ),
        Case(
            area,
            "`fit_samples(sample)`, sample returns NaN",
            lambda: fit_samples(m, lambda n, rng: numpy.full((n, 2), numpy.nan, F32), 3, batch_size=4, progress=False),
            ValueError,
            ["sample(batch_size, rng)", "NaN"],
        ),
        Case(
            area,
            "`fit_samples(sample)`, sample not callable",
            lambda: fit_samples(m, "moons", 3, progress=False),
            TypeError,
            ["sample", "str"],
        ),
        Case(area, "`Adam(lr=0)`", lambda: Adam(m.params, m.grads, lr=0.0), ValueError, ["lr", "positive"]),
        Case(
            area,
            "`Adam(clip_norm=-1)`",
            lambda: Adam(m.params, m.grads, clip_norm=-1.0),
            ValueError,
            ["clip_norm", "-1"],
        ),
        Case(
            area,
            "a coupling's last-layer weights set to 3e38 at step 2 (`log_every=1`)",
            lambda: fit(m, blows_up, 6, opt, log_every=1, progress=False),
            TrainingDiverged,
            ["step 2", "layer 1 (AffineCoupling)", "learning rate", "clip_norm"],
        ),
    ]


def _layer_cases():
    area = "layers"
    coupling = AffineCoupling(2, [True, False], hidden=(4,), rng=make_rng(0))
    return [
        Case(area, "`realnvp_2d(n_layers=0)`", lambda: realnvp_2d(n_layers=0), ValueError, ["n_layers", "0"]),
        Case(area, "`planar_2d(n_layers=-1)`", lambda: planar_2d(n_layers=-1), ValueError, ["n_layers", "-1"]),
        Case(area, "`d8(size=7)`", lambda: d8(size=7), ValueError, ["size", "even", "7"]),
        Case(
            area,
            "`AffineCoupling(2, mask)`, mask of length 3",
            lambda: AffineCoupling(2, [True, False, True], rng=make_rng(0)),
            ValueError,
            ["Mask", "length 3", "D=2"],
        ),
        Case(
            area,
            "`AffineCoupling(2, mask)`, mask copying everything",
            lambda: AffineCoupling(2, [True, True], rng=make_rng(0)),
            ValueError,
            ["mask", "copy", "transform"],
        ),
        Case(
            area,
            "`AffineCoupling(4, mask)`, a 2-D mask",
            lambda: AffineCoupling(4, [[True, False], [False, True]], rng=make_rng(0)),
            ValueError,
            ["mask", "1-D", "(2, 2)"],
        ),
        Case(
            area,
            "`AffineCoupling(2, mask)`, mask values 0/2",
            lambda: AffineCoupling(2, [0, 2], rng=make_rng(0)),
            ValueError,
            ["mask", "True/False"],
        ),
        Case(
            area,
            "`AffineCoupling.forward(x)`, x of shape (4, 3) for D = 2",
            lambda: coupling.forward(_normal((4, 3))),
            ValueError,
            ["AffineCoupling", "(N, 2)", "(4, 3)"],
        ),
        Case(
            area,
            "`ImageAffineCoupling(4, mask)`, channel mask for 2 channels",
            lambda: ImageAffineCoupling(4, channel_mask(2, True), hidden=4, n_blocks=1, rng=make_rng(0)),
            ValueError,
            ["mask", "C=4", "2"],
        ),
        Case(
            area,
            "`ImageAffineCoupling.forward(x)`, 8x8 mask on a 4x4 image",
            lambda: ImageAffineCoupling(1, checkerboard_mask(8, 8, 0), hidden=4, n_blocks=1, rng=make_rng(0)).forward(
                _normal((2, 1, 4, 4))
            ),
            ValueError,
            ["(N, 1, 8, 8)", "(2, 1, 4, 4)"],
        ),
        Case(
            area,
            "`Permutation(perm)`, perm = [0, 0, 1]",
            lambda: Permutation([0, 0, 1]),
            ValueError,
            ["perm", "permutation", "[0, 0, 1]"],
        ),
        Case(
            area,
            "`Flow(layers)`, a layer that is not a Bijection",
            lambda: Flow([coupling, "relu"]),
            TypeError,
            ["Flow", "layer 1", "str"],
        ),
        Case(area, "`Planar(features=0)`", lambda: Planar(0, rng=make_rng(0)), ValueError, ["features", "0"]),
        Case(area, "`Radial(features=2.5)`", lambda: Radial(2.5, rng=make_rng(0)), ValueError, ["features", "2.5"]),
        Case(area, "`ActNorm(features=0)`", lambda: ActNorm(0), ValueError, ["features", "0"]),
        Case(
            area,
            "`ActNorm(3).forward(x)`, x with 2 channels",
            lambda: ActNorm(3).forward(_normal((4, 2))),
            ValueError,
            ["ActNorm", "(N, 3)", "(4, 2)"],
        ),
        Case(
            area,
            "`InvertibleLinear.from_matrix(m)`, m singular",
            lambda: InvertibleLinear.from_matrix(numpy.ones((2, 2))),
            ValueError,
            ["singular"],
        ),
        Case(
            area,
            "`InvertibleLinearLU.from_matrix(m)`, m of shape (2, 3)",
            lambda: InvertibleLinearLU.from_matrix(numpy.ones((2, 3))),
            ValueError,
            ["square", "(2, 3)"],
        ),
        Case(
            area,
            "`InvertibleLinear.from_matrix(m)`, m holding a NaN",
            lambda: InvertibleLinear.from_matrix(numpy.array([[1.0, numpy.nan], [0.0, 1.0]])),
            ValueError,
            ["NaN"],
        ),
        Case(
            area,
            "`Squeeze().forward(x)`, odd image size 5x5",
            lambda: Squeeze().forward(_normal((2, 1, 5, 5))),
            ValueError,
            ["Squeeze", "even", "(2, 1, 5, 5)"],
        ),
        Case(area, "`FactorOut(inner, keep=0)`", lambda: FactorOut(Flow([]), keep=0), ValueError, ["keep", "0"]),
        Case(area, "`Logit(alpha=0.6)`", lambda: Logit(alpha=0.6), ValueError, ["alpha", "0.6"]),
        Case(
            area,
            "`dequantize(x)`, x float pixels",
            lambda: dequantize(numpy.zeros((2, 4)), 17, numpy.random.default_rng(0)),
            TypeError,
            ["dequantize", "integer", "float64"],
        ),
        Case(
            area,
            "`dequantize(x, n_levels=17)`, a pixel of 17",
            lambda: dequantize(numpy.full((2, 4), 17, dtype=numpy.uint8), 17, numpy.random.default_rng(0)),
            ValueError,
            ["dequantize", "0 .. 16", "17"],
        ),
    ]


def _data_cases(workdir):
    area = "data"
    bad_magic = os.path.join(workdir, "bad-idx3-ubyte")
    with open(bad_magic, "wb") as f:
        f.write(b"\x00\x00\x08\x01" + b"\x00" * 20)
    truncated = os.path.join(workdir, "short-idx3-ubyte")
    with open(truncated, "wb") as f:
        f.write(b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 100)
    return [
        Case(area, "`get_toy('spiral')` (unknown dataset)", lambda: get_toy("spiral"), ValueError, ["spiral", "moons"]),
        Case(
            area,
            "`get_toy('moons').sample(n=0)`",
            lambda: get_toy("moons").sample(0, numpy.random.default_rng(0)),
            ValueError,
            ["n", "positive integer", "0"],
        ),
        Case(
            area,
            "`get_toy('moons').log_prob(x)`, x of shape (4, 3)",
            lambda: get_toy("moons").log_prob(_normal((4, 3))),
            ValueError,
            ["x", "(N, 2)", "(4, 3)"],
        ),
        Case(area, "`get_energy('U9')` (unknown target)", lambda: get_energy("U9"), ValueError, ["U9", "U1"]),
        Case(
            area,
            "`get_energy('U1').energy(z)`, z of shape (4, 3)",
            lambda: get_energy("U1").energy(_normal((4, 3))),
            ValueError,
            ["z", "(N, 2)", "(4, 3)"],
        ),
        Case(
            area,
            "`load_digits('val')` (unknown split)",
            lambda: load_digits("val"),
            ValueError,
            ["val", "train", "test"],
        ),
        Case(
            area,
            "`train_val_split(images, n_val=0)`",
            lambda: train_val_split(numpy.zeros((10, 1)), 0, seed=0),
            ValueError,
            ["n_val", "0"],
        ),
        Case(
            area,
            "`load_mnist(folder)`, folder missing",
            lambda: load_mnist(os.path.join(workdir, "no-such-folder")),
            FileNotFoundError,
            ["MNIST", "no-such-folder", "download"],
        ),
        Case(
            area,
            "`load_mnist(folder, split='valid')`",
            lambda: load_mnist(workdir, "valid"),
            ValueError,
            ["valid", "train", "test"],
        ),
        Case(
            area,
            "`read_idx(path)`, wrong magic number (a labels file)",
            lambda: read_idx(bad_magic, IMAGES_MAGIC),
            ValueError,
            ["magic number", "2049", "2051"],
        ),
        Case(
            area,
            "`read_idx(path)`, truncated image file",
            lambda: read_idx(truncated, IMAGES_MAGIC),
            ValueError,
            ["truncated", "(2, 28, 28)"],
        ),
        Case(area, "`set_backend('torch')`", lambda: set_backend("torch"), ValueError, ["torch", "numpy", "cupy"]),
    ]


def _checkpoint_cases(workdir):
    area = "checkpoints"
    good = os.path.join(workdir, "good.npz")
    model = _r2()
    save_checkpoint(good, model, Adam(model.params, model.grads), extra={"step": 3})
    with open(good, "rb") as f:
        data = f.read()

    def damaged(name, content):
        path = os.path.join(workdir, name)
        with open(path, "wb") as f:
            f.write(content)
        return path

    truncated = damaged("truncated.npz", data[: len(data) // 2])
    empty = damaged("empty.npz", b"")
    text = damaged("text.npz", b"this is not a checkpoint\n")
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # inside the stored arrays: the zip CRC catches it
    flipped = damaged("flipped.npz", bytes(flipped))
    numpy.savez(os.path.join(workdir, "plain.npz"), W=numpy.ones(3))
    plain = os.path.join(workdir, "plain.npz")
    numpy.savez(os.path.join(workdir, "pickled.npz"), meta=numpy.array([{"format": "x"}], dtype=object))
    pickled = os.path.join(workdir, "pickled.npz")
    with numpy.load(good) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["meta"] = numpy.frombuffer(
        arrays["meta"].tobytes().replace(b'"version": 1', b'"version": 99'), dtype=numpy.uint8
    )
    numpy.savez(os.path.join(workdir, "v99.npz"), **arrays)
    v99 = os.path.join(workdir, "v99.npz")

    def load(path, into=None):
        return load_checkpoint(path, into or _r2())

    return [
        Case(
            area,
            "load a truncated file (first half)",
            lambda: load(truncated),
            CheckpointError,
            ["truncated", "corrupted"],
        ),
        Case(area, "load an empty file", lambda: load(empty), CheckpointError, ["empty.npz"]),
        Case(
            area,
            "load a text file",
            lambda: load(text),
            CheckpointError,
            ["text.npz", "not a minflow-checkpoint file", "zip"],
        ),
        Case(area, "load a file with one byte flipped", lambda: load(flipped), CheckpointError, ["flipped.npz"]),
        Case(area, "load an .npz without minflow metadata", lambda: load(plain), CheckpointError, ["meta"]),
        Case(area, "load an .npz holding a pickled object", lambda: load(pickled), CheckpointError, ["pickled.npz"]),
        Case(area, "load a file of format version 99", lambda: load(v99), CheckpointError, ["version 99", "version 1"]),
        Case(
            area,
            "load into a model with 3 couplings instead of 2",
            lambda: load(good, realnvp_2d(n_layers=3, hidden=(8, 8))),
            CheckpointError,
            ["does not fit", "flow.2"],
        ),
        Case(
            area,
            "load into a model with hidden width 16 instead of 8",
            lambda: load(good, realnvp_2d(n_layers=2, hidden=(16, 16))),
            CheckpointError,
            ["does not fit", "shape"],
        ),
        Case(
            area,
            "load a file that does not exist",
            lambda: load(os.path.join(workdir, "missing.npz")),
            FileNotFoundError,
            ["missing.npz", "does not exist"],
        ),
    ]


class CommandLineError(Exception):
    """``python -m minflow ...`` exited with a non-zero status; the message is its last line on stderr."""

    def __init__(self, status, message):
        super().__init__(message)
        self.label = f"exit status {status}"


def _cli(*argv):
    """Run ``python -m minflow *argv`` in this process; CommandLineError if it fails."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(list(argv))
        except SystemExit as exit_:  # argparse rejects an argument
            status = exit_.code
    if status:
        lines = stderr.getvalue().strip().splitlines()
        raise CommandLineError(status, lines[-1] if lines else "")


def _cli_path_cases(workdir):
    """Path options that cannot work: each is refused before anything is trained (test_cli_paths.py checks that)."""
    area = "cli"
    folder = os.path.join(workdir, "cli_paths")
    os.makedirs(os.path.join(folder, "results"), exist_ok=True)
    a_file, a_folder = os.path.join(folder, "notes.txt"), os.path.join(folder, "results")
    with open(a_file, "w") as f:
        f.write("a file that is in the way\n")
    cases = [
        ("`demo --out FILE` (an existing file as the figures' folder)", ("demo", "--out", a_file), ["--out", "file"]),
        (
            "`demo --json FOLDER` (an existing folder as the JSON file)",
            ("demo", "--json", a_folder),
            ["--json", "folder"],
        ),
        (
            "`demo --checkpoint FILE/r2.npz` (a path under a file)",
            ("demo", "--checkpoint", os.path.join(a_file, "r2.npz")),
            ["--checkpoint", "notes.txt is a file"],
        ),
        (
            "`demo --out /proc/minflow` (a folder where no file can be created)",
            ("demo", "--out", "/proc/minflow"),
            ["--out", "cannot create files in /proc"],
        ),
        ("`digits --out FILE`", ("digits", "--out", a_file), ["--out", "file"]),
        ("`digits --checkpoint FOLDER`", ("digits", "--checkpoint", a_folder), ["--checkpoint", "folder"]),
        ("`digits --json FILE/d8.json`", ("digits", "--json", os.path.join(a_file, "d8.json")), ["--json", "a file"]),
        ("`tarflow --checkpoint FOLDER`", ("tarflow", "--checkpoint", a_folder), ["--checkpoint", "folder"]),
        ("`tarflow --out FILE`", ("tarflow", "--out", a_file), ["--out", "file"]),
        ("`energy --figure FOLDER`", ("energy", "--figure", a_folder), ["--figure", "folder"]),
        ("`figure3 --json FOLDER`", ("figure3", "--json", a_folder), ["--json", "folder"]),
        ("`glow-ablation --out FILE`", ("glow-ablation", "--out", a_file), ["--out", "file"]),
        (
            "`compare2d --json FILE/c.json`",
            ("compare2d", "--json", os.path.join(a_file, "c.json")),
            ["--json", "a file"],
        ),
        ("`warp --out FOLDER`", ("warp", "--out", a_folder), ["--out", "folder"]),
        ("`warp --checkpoint FOLDER`", ("warp", "--checkpoint", a_folder), ["--checkpoint", "folder"]),
    ]
    return [Case(area, what, lambda argv=argv: _cli(*argv), CommandLineError, names) for what, argv, names in cases]


def _cli_cases(workdir):
    area = "cli"
    out = os.path.join(workdir, "cli")
    return [
        Case(
            area,
            "`demo --dataset spiral` (unknown dataset)",
            lambda: _cli("demo", "--dataset", "spiral"),
            CommandLineError,
            ["--dataset", "spiral", "moons"],
        ),
        Case(
            area,
            "`demo --steps 0`",
            lambda: _cli("demo", "--steps", "0"),
            CommandLineError,
            ["--steps", "positive integer", "0"],
        ),
        Case(
            area,
            "`demo --lr 0`",
            lambda: _cli("demo", "--lr", "0"),
            CommandLineError,
            ["--lr", "positive number", "0.0"],
        ),
        Case(
            area,
            "`energy --target U9` (unknown target)",
            lambda: _cli("energy", "--target", "U9"),
            CommandLineError,
            ["--target", "U9", "U1"],
        ),
        Case(
            area,
            "`energy --layers 0`",
            lambda: _cli("energy", "--layers", "0"),
            CommandLineError,
            ["--layers", "positive integer", "0"],
        ),
        Case(area, "`digits --epochs 0`", lambda: _cli("digits", "--epochs", "0"), CommandLineError, ["--epochs", "0"]),
        Case(
            area,
            "`digits --blocks -1`",
            lambda: _cli("digits", "--blocks", "-1", "--out", out),
            CommandLineError,
            ["--blocks", "-1"],
        ),
        Case(
            area,
            "`digits --resume` without `--checkpoint`",
            lambda: _cli("digits", "--resume", "--out", out),
            CommandLineError,
            ["--resume", "--checkpoint"],
        ),
        Case(
            area,
            "`tarflow --resume` without `--checkpoint`",
            lambda: _cli("tarflow", "--resume", "--out", out),
            CommandLineError,
            ["--resume", "--checkpoint"],
        ),
        Case(
            area,
            "`tarflow --noise 0`",
            lambda: _cli("tarflow", "--noise", "0"),
            CommandLineError,
            ["--noise", "positive number", "0.0"],
        ),
        Case(
            area,
            "`tarflow --patch 3`",
            lambda: _cli("tarflow", "--patch", "3"),
            CommandLineError,
            ["--patch", "invalid choice", "3"],
        ),
        Case(
            area,
            "`tarflow --dim 30` (not a multiple of the 4 heads)",
            lambda: _cli("tarflow", "--dim", "30", "--out", out),
            CommandLineError,
            ["--dim", "multiple of 4", "30"],
        ),
        Case(area, "`warp --frames 0`", lambda: _cli("warp", "--frames", "0"), CommandLineError, ["--frames", "0"]),
        Case(
            area,
            "`demo --step 5` (an abbreviated option)",
            lambda: _cli("demo", "--step", "5"),
            CommandLineError,
            ["unrecognized arguments", "--step"],
        ),
        Case(
            area,
            "`demo --threads -1`",
            lambda: _cli("demo", "--threads", "-1"),
            CommandLineError,
            ["--threads", ">= 0", "-1"],
        ),
        *_cli_path_cases(workdir),
    ]


def build_cases(workdir):
    """Every case; files the cases need are written to ``workdir`` (an existing folder)."""
    return (
        _model_cases()
        + _training_cases()
        + _layer_cases()
        + _data_cases(workdir)
        + _checkpoint_cases(workdir)
        + _cli_cases(workdir)
    )


def run_case(case):
    """(the exception, its message) of the case's call; AssertionError if it does not raise."""
    try:
        case.call()
    except Exception as err:  # noqa: BLE001 (the point is to catch what the call raises)
        return err, str(err)
    raise AssertionError(f"{case.area}: {case.what} raised nothing; expected {case.exc.__name__}")
