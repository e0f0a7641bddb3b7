"""``python -m minflow tarflow``: train TarFlow on the 8x8 digits; bpd per epoch; samples, optionally denoised.

The model is ``zoo.tarflow_digits`` (patches of --patch x --patch pixels,
--blocks TarFlow blocks), trained by D8's recipe as the ``digits`` command
(the same split, dequantisation, batches, evaluation with 10 fixed
dequantisation draws, --val, --checkpoint and --resume; ``train_on_digits``),
with Adam and no weight decay by default, and the same recipe options
(--optimizer, --schedule, --warmup, --ema; see ``commands.digits``). TarFlow's
recipe, ``--batch-size 16 --lr 1.5e-3 --optimizer adamw --weight-decay 0.1
--schedule cosine --warmup 2 --ema 0.9995`` over 100 epochs, reaches D8's
bits/dim (README). After each epoch:

    train_bpd: the epoch's mean training loss in bits per dimension (of the
               noisy images when --noise is given);
    test_bpd:  bits/dim of the clean test digits, comparable with D8's.

The results also hold ``sample_64_seconds``, the time to draw 64 samples.

``--noise SIGMA`` is TarFlow's training recipe (``zoo.noise``): every training
batch gets Gaussian noise of standard deviation SIGMA after the logit
transform, and the samples are shown before and after one denoising step
along the model's score (Tweedie). The results then also hold
``noisy_test_bpd``, the bits/dim of the noisy test images (the density the
model was trained on; not a bound on the digits' likelihood). Figures
(``--out``): tarflow_samples.png (temperature 1.0; with --noise: raw and
denoised side by side), tarflow_curves.png (bpd per epoch).
"""

import os
import time

from ..backend import make_rng, to_numpy
from ..data.digits import N_LEVELS
from ..zoo.d8 import D8_ALPHA, evaluate_bpd
from ..zoo.noise import LogitNoise, noisy_bpd, sample_denoised
from ..zoo.tarflow import tarflow_digits
from . import positive_float, positive_int, write_json
from .digits import (
    EVAL_SEED,
    RECIPE_KEYS,
    add_epoch_args,
    check_image_paths,
    epoch_results,
    keep_freed_memory,
    load_digit_splits,
    make_optimizer,
    recipe_config,
    save_bpd_curves,
    train_on_digits,
)

__all__ = ["FIGURES", "add_parser", "run"]

FIGURES = ("tarflow_samples.png", "tarflow_curves.png")
_CONFIG_KEYS = (
    "seed",
    "batch_size",
    "lr",
    "weight_decay",
    "patch",
    "blocks",
    "dim",
    "noise",
    "val",
    "train_size",
    "eval_draws",
    *RECIPE_KEYS,
)


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "tarflow",
        help="train TarFlow (causal-Transformer autoregressive flow) on the 8x8 digits; bits/dim per epoch; samples",
        description=(
            "Train zoo.tarflow_digits by D8's recipe on the 1,497 training digits, report train and test bits per "
            "dimension after every epoch, and draw samples and the bpd curves; --noise adds TarFlow's Gaussian "
            "noise augmentation and denoises the samples with the model's score."
        ),
    )
    add_epoch_args(parser, "tarflow", weight_decay=0.0)
    parser.add_argument(
        "--patch", type=int, default=2, choices=(1, 2), help="patch side: 2 (16 tokens of 4 pixels) or 1 (default: 2)"
    )
    parser.add_argument("--blocks", type=positive_int, default=6, help="TarFlow blocks (default: %(default)s)")
    parser.add_argument("--dim", type=positive_int, default=64, help="Transformer width (default: %(default)s)")
    parser.add_argument(
        "--noise",
        type=positive_float,
        metavar="SIGMA",
        help="Gaussian noise of std SIGMA in logit space on every training batch; denoised samples (e.g. 0.3)",
    )
    parser.set_defaults(run=run)


def run(args):
    check_image_paths(args, example="tarflow.npz")
    if args.dim % 4:
        raise ValueError(f"--dim must be a multiple of 4 (the Transformer's 4 heads); got {args.dim}.")
    keep_freed_memory()
    train_images, val_images, test_images, _ = load_digit_splits(args.train_size, args.val)
    config = recipe_config(args, _CONFIG_KEYS)

    model = tarflow_digits(patch=args.patch, blocks=args.blocks, hidden=args.dim, seed=args.seed)
    optimizer = make_optimizer(args, model, len(train_images))
    augment = LogitNoise(D8_ALPHA, args.noise) if args.noise else None

    def evaluate(images):
        return evaluate_bpd(model, images, N_LEVELS, args.eval_draws, EVAL_SEED)

    history, state = train_on_digits(
        args, model, optimizer, config, train_images, val_images, test_images, evaluate, augment
    )
    results = epoch_results(history, state, config, model)
    results["sample_64_seconds"] = sampling_seconds(model, 64, args.seed)
    if args.noise:
        results["noisy_test_bpd"] = noisy_bpd(model, test_images, args.noise, args.eval_draws, EVAL_SEED)
    if not args.no_figures:
        draw_figures(model, history, args.out, args.seed, args.noise)
    if args.json:
        write_json(args.json, results)
    return 0


def sampling_seconds(model, n, seed=0):
    """Wall time of drawing n samples (the sequential inverse: T conditioner steps per block)."""
    start = time.perf_counter()
    model.sample(n, rng=make_rng(seed, model.xp))
    return time.perf_counter() - start


def draw_samples(model, n, seed=0, noise=None):
    """[(title, (n, 8, 8) host images)]: samples at temperature 1.0, and their denoised versions with ``noise``."""
    rng = make_rng(seed, model.xp)
    if not noise:
        return [("samples, temperature 1.0", to_numpy(model.sample(n, rng=rng))[:, 0])]
    v, v_hat = sample_denoised(model, n, noise, rng=rng)
    return [
        (f"samples (noise sigma {noise:g} in logit space)", to_numpy(v)[:, 0]),
        ("after one denoising step (Tweedie)", to_numpy(v_hat)[:, 0]),
    ]


def draw_figures(model, history, out, seed=0, noise=None):
    """tarflow_samples.png and tarflow_curves.png into folder ``out``."""
    from matplotlib.figure import Figure

    from ..viz.images import show_images

    os.makedirs(out, exist_ok=True)
    panels = draw_samples(model, 64, seed, noise)
    fig = Figure(figsize=(4.5 * len(panels), 4.8))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, images) in zip(axes, panels):
        show_images(ax, images, 8, title)
    fig.tight_layout()
    fig.savefig(os.path.join(out, FIGURES[0]), dpi=120)

    train_label = "train" + (" (noisy images)" if noise else "")
    save_bpd_curves(history, os.path.join(out, FIGURES[1]), "TarFlow", train_label)
