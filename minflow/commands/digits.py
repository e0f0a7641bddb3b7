"""``python -m minflow digits``: train D8, the multi-scale RealNVP, on the 8x8 digits; bpd per epoch; figures.

The recipe of docs/reference-problems.md, D8: 1,497 training and 300 test images
(intensities 0..16), uniform dequantisation v = (x + u)/17 with fresh noise
for every batch, Adam (lr 1e-3) with coupled L2 weight decay 5e-5 on every
parameter, batch 64, batches reshuffled every epoch with the last partial
batch kept (24 steps per epoch). After each epoch:

    train_bpd: the epoch's mean training loss in bits per dimension (one
               dequantisation draw per image, weights moving during the epoch);
    test_bpd:  -(log q(v) - 64 ln 17) / (64 ln 2), averaged over the 300 test
               images and 10 fixed dequantisation draws (``zoo.d8.evaluate_bpd``).

``--val N`` holds N training images out (a fixed split, seed ``VAL_SEED``)
and keeps the model of the best validation epoch (``<checkpoint>.best.npz``
when ``--checkpoint`` is given) for the figures. ``--checkpoint`` is written
after every epoch with the optimizer, the training generator's state and the
history, so ``--resume`` continues exactly as an uninterrupted run of the same
seed would have.

The training recipe can change (both image commands, ``make_optimizer``):
``--optimizer adamw`` makes --weight-decay decoupled (``optim.AdamW``),
``--schedule cosine --warmup E`` warms the learning rate up linearly over E
epochs and decays it along a cosine to 0 at the last epoch
(``schedule.WarmupCosine``), and ``--ema DECAY`` evaluates, keeps and draws
from an exponential moving average of the weights (``ema.EMA``; the JSON's
``final_test_bpd_without_ema`` is the last trained weights').

Figures (``--out``): d8_samples.png (temperatures 1.0 and 0.7),
d8_reconstructions.png (test images, forward then inverse),
d8_interpolation.png (straight lines in latent space between test digits),
d8_curves.png (bpd per epoch).
"""

import contextlib
import os
import sys

import numpy

from ..backend import make_rng, to_device, to_numpy
from ..checkpoint import load_checkpoint, read_checkpoint_meta, save_checkpoint
from ..data.digits import N_LEVELS, load_digits, train_val_split
from ..ema import EMA
from ..metrics import bits_per_dim
from ..optim import Adam, AdamW
from ..schedule import WarmupCosine
from ..train import fit_epochs, new_epoch_history
from ..zoo.d8 import d8, evaluate_bpd
from . import DeprecatedFlag, positive_float, positive_int, write_json
from .paths import RUNS, check_output_file, check_output_folder, check_readable_file

__all__ = [
    "EVAL_SEED",
    "FIGURES",
    "RECIPE_KEYS",
    "VAL_SEED",
    "add_epoch_args",
    "add_parser",
    "check_image_paths",
    "epoch_results",
    "keep_freed_memory",
    "load_digit_splits",
    "make_optimizer",
    "nll_to_bpd",
    "recipe_config",
    "run",
    "save_bpd_curves",
    "train_on_digits",
]

EVAL_SEED = 0  # the 10 fixed dequantisation draws of every evaluation
VAL_SEED = 0  # the validation split, the same whatever --seed
N_EVAL_DRAWS = 10
# settings that checkpoints of some runs lack, with the value those runs had: D8's affine transformer;
# Adam at a constant learning rate without a moving average
_ADDED_SETTINGS = {
    "transformer": "affine", "optimizer": "adam", "schedule": "constant", "warmup": 0, "schedule_epochs": None, "ema": None
}  # fmt: skip
RECIPE_KEYS = ("optimizer", "schedule", "warmup", "ema")  # the options of make_optimizer, in every command's config
FIGURES = ("d8_samples.png", "d8_reconstructions.png", "d8_interpolation.png", "d8_curves.png")
_CONFIG_KEYS = (
    "seed", "batch_size", "lr", "weight_decay", "hidden", "blocks", "transformer", "val", "train_size", "eval_draws",
    *RECIPE_KEYS,
)  # fmt: skip


def add_epoch_args(parser, name, weight_decay):
    """The options of a command that trains on the digits by epochs (digits, tarflow): epochs, outputs, resume, recipe."""
    parser.add_argument("--epochs", type=positive_int, default=20, metavar="N", help="epochs in all (default: 20)")
    parser.add_argument("--out", default=os.path.join(RUNS, name), help="folder for the figures (default: %(default)s)")
    parser.add_argument("--json", metavar="PATH", help="write the per-epoch results as JSON to PATH (every epoch)")
    parser.add_argument(
        "--checkpoint", metavar="PATH", help="save model, optimizer and run state to PATH after every epoch"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from --checkpoint if it exists (same settings needed)"
    )
    parser.add_argument(
        "--val", type=positive_int, metavar="N", help="hold N training images out; keep the best validation epoch"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, shuffling and noise (default: 0)")
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="default: %(default)s")
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=1e-3,
        help="learning rate, the peak of --schedule cosine (default: %(default)s)",
    )
    parser.add_argument(
        "--weight-decay",
        type=float,
        default=weight_decay,
        help="weight decay on every parameter, coupled L2 or decoupled by --optimizer (default: %(default)s)",
    )
    parser.add_argument(
        "--optimizer",
        choices=("adam", "adamw"),
        default="adam",
        help="adam: --weight-decay is coupled L2; adamw: decoupled weight decay (default: %(default)s)",
    )
    parser.add_argument(
        "--schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="learning rate: constant --lr, or linear warmup to --lr then cosine decay to 0 at the last epoch "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--warmup", type=int, default=0, metavar="EPOCHS", help="warmup epochs of --schedule cosine (default: 0)"
    )
    parser.add_argument(
        "--ema",
        type=float,
        metavar="DECAY",
        help="evaluate, keep and draw from an exponential moving average of the weights (e.g. 0.998)",
    )
    parser.add_argument(
        "--train-size", type=positive_int, metavar="N", help="train on the first N training images only (quick runs)"
    )
    parser.add_argument(
        "--eval-draws",
        type=positive_int,
        default=N_EVAL_DRAWS,
        metavar="N",
        help="dequantisation draws per evaluation (default: %(default)s, as in D8)",
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar and the per-epoch lines")
    parser.add_argument("--quiet", action=DeprecatedFlag, use="--no-progress", dest="no_progress")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "digits",
        help="train the D8 multi-scale RealNVP on the 8x8 digits; bits/dim per epoch; figures",
        description=(
            "Train D8 (docs/reference-problems.md) on the 1,497 training digits, report train and test bits per "
            "dimension after every epoch, and draw samples, reconstructions, latent interpolations and the "
            "bpd curves."
        ),
    )
    add_epoch_args(parser, "digits", weight_decay=5e-5)
    parser.add_argument("--hidden", type=positive_int, default=32, help="conditioner width (default: 32, D8)")
    parser.add_argument("--blocks", type=int, default=2, help="residual blocks per conditioner (default: 2, D8)")
    parser.add_argument(
        "--transformer",
        choices=("affine", "spline"),
        default="affine",
        help="coupling transformer: affine (D8) or spline (rational-quadratic, 8 bins on [-4, 4], D8's "
        "architecture otherwise) (default: %(default)s)",
    )
    parser.set_defaults(run=run)


def keep_freed_memory():
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS.

    Every training step allocates and frees some 100 MB of activations; by
    default glibc hands large freed blocks back to the kernel, and the next
    step pays a page fault per 4 KB to get them again (about a quarter of
    the step time on the 8x8 digits). Raising the mmap and trim thresholds
    keeps them in the process. Returns True where it took effect (Linux with
    glibc); elsewhere it does nothing and returns False.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def nll_to_bpd(nll, d=64, n_levels=N_LEVELS):
    """Mean -log q(v) in nats per image to bits per dimension of the discrete data."""
    return bits_per_dim(-nll, d, n_levels)


def _config(args):
    return recipe_config(args, _CONFIG_KEYS)


def recipe_config(args, keys):
    """The settings a checkpoint keeps: ``keys`` of ``args``, and the span of a cosine schedule
    (it spans --epochs, so a resumed run must keep them; a constant rate may run on)."""
    config = {key: getattr(args, key) for key in keys}
    config["schedule_epochs"] = args.epochs if args.schedule == "cosine" else None
    return config


def make_optimizer(args, model, n_train):
    """The optimizer of ``args`` over ``model``: Adam or AdamW at --lr with --weight-decay, the cosine
    schedule over --epochs of ``n_train`` images in batches of --batch-size, and the EMA wrapper."""
    schedule = None
    if args.schedule == "cosine":
        if not 0 <= args.warmup < args.epochs:
            raise ValueError(f"--warmup must be in [0, --epochs={args.epochs}) epochs; got {args.warmup}.")
        steps_per_epoch = -(-n_train // args.batch_size)  # the last partial batch kept
        schedule = WarmupCosine(args.epochs * steps_per_epoch, args.warmup * steps_per_epoch)
    elif args.warmup:
        raise ValueError("--warmup needs --schedule cosine (a constant learning rate has no warmup).")
    cls = AdamW if args.optimizer == "adamw" else Adam
    optimizer = cls(model.params, model.grads, lr=args.lr, weight_decay=args.weight_decay, schedule=schedule)
    if args.ema is None:
        return optimizer
    if not 0.0 < args.ema < 1.0:
        raise ValueError(f"--ema must be a decay in (0, 1), e.g. 0.998; got {args.ema}.")
    return EMA(optimizer, args.ema)


def _best_path(path):
    root, ext = os.path.splitext(path)
    return f"{root}.best{ext or '.npz'}"


def check_image_paths(args, example="d8.npz"):
    """--out, --json, --checkpoint can be written (a clear ValueError otherwise; ``example``: a file name
    for the message); says so when --resume finds no checkpoint."""
    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint PATH (the file to continue from).")
    if not args.no_figures:
        check_output_folder(args.out, "--out")
    if args.json:
        check_output_file(args.json, "--json")
    if args.checkpoint:
        exists = check_readable_file(args.checkpoint, "--checkpoint")
        check_output_file(args.checkpoint, "--checkpoint", example=example)
        if args.resume and not exists:
            print(f"note: --resume: no checkpoint at {args.checkpoint}; a new run starts and saves it there.")


def load_digit_splits(train_size=None, val=None):
    """(train, validation or None, test, test labels) of the 8x8 digits: the first ``train_size``
    training images (all if None), ``val`` of them held out (split seed ``VAL_SEED``)."""
    train_images = load_digits("train")
    if train_size:
        train_images = train_images[:train_size]
    val_images = None
    if val:
        train_images, val_images = train_val_split(train_images, val, VAL_SEED)
    test_images, test_labels = load_digits("test", with_labels=True)
    return train_images, val_images, test_images, test_labels


def run(args):
    check_image_paths(args)
    if args.blocks < 0:
        raise ValueError(f"--blocks must be >= 0; got {args.blocks}.")
    keep_freed_memory()
    train_images, val_images, test_images, test_labels = load_digit_splits(args.train_size, args.val)
    config = _config(args)

    model = d8(hidden=args.hidden, n_blocks=args.blocks, transformer=args.transformer, seed=args.seed)
    optimizer = make_optimizer(args, model, len(train_images))

    def evaluate(images):
        return evaluate_bpd(model, images, N_LEVELS, args.eval_draws, EVAL_SEED)

    history, state = train_on_digits(args, model, optimizer, config, train_images, val_images, test_images, evaluate)
    if not args.no_figures:
        draw_figures(model, test_images, test_labels, history, args.out, args.seed)
    results = epoch_results(history, state, config, model)
    if args.json:
        write_json(args.json, results)
    return 0


def train_on_digits(args, model, optimizer, config, train_images, val_images, test_images, evaluate, augment=None):
    """The epoch loop of an image command: resume, ``train.fit_epochs``, checkpoints, JSON, the best epoch.

    Reads ``args.epochs``, ``seed``, ``batch_size``, ``checkpoint``, ``resume``,
    ``json`` and ``no_progress``. A checkpoint keeps ``config`` and refuses to
    resume under other settings. With validation images the model ends at the
    best validation epoch's weights (``<checkpoint>.best.npz`` or a copy in
    memory). ``augment`` as ``train.train_epoch``'s.

    With an ``EMA`` optimizer, ``evaluate`` (and the best epoch) sees the
    average of the weights, the model ends holding the average, and
    ``state["final_test_bpd_without_ema"]`` is the last trained weights' test bpd.

    Returns:
        (history, state) of ``fit_epochs``.
    """
    rng = numpy.random.default_rng(args.seed + 1)  # shuffling and dequantisation noise
    averaged = optimizer.averaged if isinstance(optimizer, EMA) else contextlib.nullcontext

    def evaluate_trained(images):
        with averaged():
            return evaluate(images)

    history, state = new_epoch_history()
    best_params = None
    if args.resume and os.path.exists(args.checkpoint):
        saved = read_checkpoint_meta(args.checkpoint).get("extra", {}).get("config") or {}
        # a config saved before a setting existed ran with its default
        saved = {**{k: v for k, v in _ADDED_SETTINGS.items() if k in config}, **saved}
        if saved != config:  # checked before the weights, whose shapes depend on the settings
            raise ValueError(
                f"--resume: {args.checkpoint} was written with settings {saved}, "
                f"not {config}. Use the same options, or start a new --checkpoint."
            )
        extra = load_checkpoint(args.checkpoint, model, optimizer)
        rng.bit_generator.state = extra["rng"]
        history, state = extra["history"], extra["state"]
        if not args.no_progress:
            print(f"resumed from {args.checkpoint} after epoch {state['epoch']}")

    def on_epoch(epoch, line, improved):
        nonlocal best_params
        if improved:
            with averaged():  # the weights that were evaluated
                if args.checkpoint:
                    save_checkpoint(_best_path(args.checkpoint), model, extra={"epoch": epoch, "config": config})
                else:
                    best_params = {k: p.copy() for k, p in model.params.items()}
        if args.checkpoint:
            extra = {"config": config, "rng": rng.bit_generator.state, "history": history, "state": state}
            save_checkpoint(args.checkpoint, model, optimizer, extra=extra)
        if args.json:
            write_json(args.json, epoch_results(history, state, config, model))
        if not args.no_progress:
            print(f"{line}  ({state['seconds']:.0f} s, {state['train_seconds'] / state['steps']:.3f} s/step)")

    fit_epochs(
        model,
        optimizer,
        train_images,
        args.epochs,
        rng,
        args.batch_size,
        N_LEVELS,
        evaluate_trained,
        test_images,
        val_images,
        history,
        state,
        on_epoch,
        progress=not args.no_progress,
        augment=augment,
    )

    if isinstance(optimizer, EMA):  # the last trained weights beside their average; the average goes on
        state["final_test_bpd_without_ema"] = evaluate(test_images)["bpd"]
        for name, a in optimizer.average().items():
            model.params[name][...] = a
    if state["best_epoch"] is not None:  # the figures show the best validation epoch's model
        if best_params is not None:
            for k, p in model.params.items():
                p[...] = best_params[k]
        elif args.checkpoint:
            load_checkpoint(_best_path(args.checkpoint), model)
    return history, state


def epoch_results(history, state, config, model):
    """The JSON results of an image command: timings, parameter count, config, the per-epoch lists, the best epoch."""
    steps = max(state["steps"], 1)
    out = {
        "epochs": state["epoch"],
        "seconds": state["seconds"],
        "seconds_per_step": state["train_seconds"] / steps,
        "steps_per_epoch": state["steps"] // max(state["epoch"], 1),
        "n_params": model.num_params(),
        "config": config,
        **history,
    }
    if "final_test_bpd_without_ema" in state:
        out["final_test_bpd_without_ema"] = state["final_test_bpd_without_ema"]
    if state["best_epoch"] is not None:
        out.update(best_epoch=state["best_epoch"], best_val_bpd=state["best_val_bpd"])
        out["best_test_bpd"] = history["test_bpd"][state["best_epoch"] - 1]
    return out


# -- figures ------------------------------------------------------------------


def draw_figures(model, test_images, test_labels, history, out, seed=0):
    """Samples at T = 1.0 and 0.7, reconstructions, latent interpolations, bpd curves, into folder ``out``."""
    from matplotlib.figure import Figure

    from ..viz.images import show_images

    os.makedirs(out, exist_ok=True)
    xp, dtype = model.xp, model.dtype

    fig = Figure(figsize=(9, 4.8))
    for ax, temperature in zip(fig.subplots(1, 2), (1.0, 0.7)):
        v = to_numpy(model.sample(64, rng=make_rng(seed, xp), temperature=temperature))[:, 0]
        show_images(ax, v, 8, f"samples, temperature {temperature}")
    fig.tight_layout()
    fig.savefig(os.path.join(out, FIGURES[0]), dpi=120)

    v = to_device((test_images[:16] + 0.5) / N_LEVELS, xp, dtype)  # bin centres
    z, _ = model.flow.forward(v)
    v_back = model.flow.inverse(z)[0]
    error = float(xp.abs(v_back - v).max())
    fig = Figure(figsize=(9, 1.9))
    ax = fig.subplots()
    both = numpy.concatenate([to_numpy(v)[:, 0], to_numpy(v_back)[:, 0]])
    show_images(ax, both, 16, f"test digits (top) and inverse(forward(x)) (bottom); max |error| {error:.1e}")
    fig.tight_layout()
    fig.savefig(os.path.join(out, FIGURES[1]), dpi=120)

    firsts = [int(numpy.flatnonzero(test_labels == c)[0]) for c in range(10)]
    pairs = [(firsts[a], firsts[b]) for a, b in ((0, 6), (1, 7), (2, 3), (4, 9), (5, 8))]
    ends = to_device((test_images[[i for pair in pairs for i in pair]] + 0.5) / N_LEVELS, xp, dtype)
    z = model.flow.forward(ends)[0]  # (10, 4, 4, 4)
    t = to_device(numpy.linspace(0, 1, 10), xp, dtype)[:, None, None, None]
    path = xp.concatenate([(1 - t) * z[2 * k] + t * z[2 * k + 1] for k in range(len(pairs))])  # (50, 4, 4, 4)
    frames = to_numpy(model.flow.inverse(path)[0])[:, 0]
    fig = Figure(figsize=(6, 3.4))
    show_images(fig.subplots(), frames, 10, "straight lines in latent space between test digits")
    fig.tight_layout()
    fig.savefig(os.path.join(out, FIGURES[2]), dpi=120)

    save_bpd_curves(history, os.path.join(out, FIGURES[3]), "D8", "train (epoch mean of the training loss)")


def save_bpd_curves(history, path, name, train_label):
    """The bits/dim curves of an epoch run (train, test, validation) with the best test epoch marked, as a PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    epochs = numpy.arange(1, len(history["train_bpd"]) + 1)
    ax.plot(epochs, history["train_bpd"], label=train_label)
    ax.plot(epochs, history["test_bpd"], label="test (10 fixed dequantisation draws)")
    if history["val_bpd"]:
        ax.plot(epochs, history["val_bpd"], label="validation")
    best = int(numpy.argmin(history["test_bpd"]))
    ax.axhline(history["test_bpd"][best], color="0.6", lw=0.8, ls=":")
    ax.set_title(f"{name} on the 8x8 digits: best test {history['test_bpd'][best]:.3f} bpd (epoch {best + 1})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits per dimension")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
