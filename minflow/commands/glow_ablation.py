"""``python -m minflow glow-ablation``: Glow's Figure 3 ablation on the 8x8 digits, laptop-sized.

    python -m minflow glow-ablation --epochs 20 --json runs/glow-ablation/glow_ablation.json --out runs/glow-ablation/

Kingma & Dhariwal (2018), arXiv:1807.03039, section 5.1 and Figure 3, compare
three ways of mixing channels between couplings (a fixed reversal, a fixed
random shuffle, the learned invertible 1x1 convolution) with additive and
affine couplings. Here: the two-level ``glow_digits`` model (K steps per
level), every combination trained with the D8 recipe of
docs/reference-problems.md (batch 64, Adam lr 1e-3, coupled L2 weight decay 5e-5,
batches reshuffled every epoch with the last partial one kept, a fresh
dequantisation of every batch, float32), from the same initial seed and the
same data order. ActNorm layers are initialised on 512 training images
before the first step.

Reported after every epoch: test bits per dimension (``evaluate_bpd``,
``--draws`` fixed dequantisation draws of the 300 test images) and the
training loss in bits per dimension. One figure (test bpd per epoch, one
panel per coupling, one line per mixing) and one table (final and best test
bpd). The JSON is rewritten after every epoch, so a long job can be watched.
"""

import math
import os
import time

import numpy

from . import (
    add_command_parser,
    add_output_args,
    markdown_grid,
    positive_float,
    positive_int,
    pyplot,
    save_pyplot_figure,
    write_json,
)
from .paths import check_output_file, check_output_folder

__all__ = ["MIXING_LABELS", "add_parser", "run", "train_variant"]

MIXING_LABELS = {"reverse": "reverse", "shuffle": "shuffle", "lu": "1x1 conv (LU)", "plain": "1x1 conv (plain)"}
N_INIT = 512  # training images for ActNorm's data-dependent initialisation


def add_parser(subparsers):
    p = add_command_parser(
        subparsers,
        "glow-ablation",
        help="Glow's ablation on the 8x8 digits: reverse / shuffle / 1x1 conv x additive / affine couplings",
        doc=__doc__,
    )
    p.add_argument(
        "--mixings",
        nargs="+",
        choices=list(MIXING_LABELS),
        default=["reverse", "shuffle", "lu"],
        help="channel mixings (default: reverse shuffle lu)",
    )
    p.add_argument(
        "--couplings",
        nargs="+",
        choices=["additive", "affine"],
        default=["additive", "affine"],
        help="couplings (default: additive affine)",
    )
    p.add_argument("--epochs", type=positive_int, default=20, help="epochs per variant (default: %(default)s)")
    p.add_argument(
        "--steps-per-level", type=positive_int, default=4, help="K, Glow steps per level (default: %(default)s)"
    )
    p.add_argument("--hidden", type=positive_int, default=32, help="conditioner width (default: %(default)s)")
    p.add_argument(
        "--n-blocks", type=positive_int, default=2, help="conditioner residual blocks (default: %(default)s)"
    )
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per step (default: %(default)s)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=5e-5, help="coupled L2 weight decay (default: %(default)s)")
    p.add_argument(
        "--draws", type=positive_int, default=10, help="dequantisation draws of the test bpd (default: %(default)s)"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the weights, data order and noise (default: %(default)s)"
    )
    add_output_args(p, "glow-ablation", "glow_ablation.json", "glow_ablation.png")
    p.set_defaults(run=run)
    return p


def train_variant(args, mixing, coupling, on_epoch=None):
    """Train one (mixing, coupling) variant for ``args.epochs`` epochs; returns its result dict.

    ``on_epoch(result)`` is called after every epoch with the partial result.
    """
    from ..data.digits import N_LEVELS, load_digits
    from ..flows.preprocessing import dequantize
    from ..optim import Adam
    from ..train import TrainingDiverged, fit
    from ..zoo.d8 import evaluate_bpd
    from ..zoo.glow import glow_digits

    train, test = load_digits("train"), load_digits("test")
    model = glow_digits(
        steps=args.steps_per_level,
        hidden=args.hidden,
        n_blocks=args.n_blocks,
        mixing=mixing,
        coupling=coupling,
        seed=args.seed,
    )
    rng = numpy.random.default_rng(args.seed)  # data order and dequantisation noise, the same for every variant
    v_init, _ = dequantize(train[rng.permutation(len(train))[:N_INIT]], N_LEVELS, rng)
    model.log_prob(v_init)  # ActNorm: data-dependent initialisation
    optimizer = Adam(model.params, model.grads, lr=args.lr, weight_decay=args.weight_decay)
    dims = math.prod(train.shape[1:])
    result = {
        "mixing": mixing,
        "coupling": coupling,
        "params": model.num_params(),
        "epoch": [],
        "test_bpd": [],
        "test_iw_bpd": [],
        "train_bpd": [],
        "seconds": 0.0,
    }
    start = time.perf_counter()
    n_steps = 0
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(train))
        batches = [order[i : i + args.batch_size] for i in range(0, len(train), args.batch_size)]

        def loss_and_backward(step, batches=batches):
            v, _ = dequantize(train[batches[step]], N_LEVELS, rng)
            return model.nll_and_backward(v)

        try:
            history = fit(
                model,
                loss_and_backward,
                len(batches),
                optimizer,
                log_every=1,
                progress=not args.no_progress,
                desc=f"{coupling}/{mixing} epoch {epoch}",
            )
        except TrainingDiverged as err:
            result["diverged"] = f"epoch {epoch}: {err}"
            break
        n_steps += len(batches)
        train_nll = float(numpy.mean(history["loss"]))  # nats per image, over this epoch's batches
        scores = evaluate_bpd(model, test, N_LEVELS, n_draws=args.draws, seed=args.seed)
        result["epoch"].append(epoch)
        result["train_bpd"].append((train_nll + dims * math.log(N_LEVELS)) / (dims * math.log(2)))
        result["test_bpd"].append(scores["bpd"])
        result["test_iw_bpd"].append(scores["iw_bpd"])
        result["seconds"] = time.perf_counter() - start
        result["s_per_step"] = result["seconds"] / n_steps  # evaluation included
        if on_epoch is not None:
            on_epoch(result)
    if result["test_bpd"]:
        best = int(numpy.argmin(result["test_bpd"]))
        result.update(
            final_test_bpd=result["test_bpd"][-1], best_test_bpd=result["test_bpd"][best], best_epoch=best + 1
        )
    return result


def markdown_table(runs, mixings, couplings):
    """Rows the mixings, columns the couplings: 'final (best at epoch e)' test bpd."""
    cell = {(r["mixing"], r["coupling"]): r for r in runs}
    rows = []
    for m in mixings:
        row = []
        for c in couplings:
            r = cell.get((m, c))
            if r is None or "final_test_bpd" not in r:
                row.append("diverged" if r is not None else "")
            else:
                row.append(f"{r['final_test_bpd']:.3f} (best {r['best_test_bpd']:.3f}, epoch {r['best_epoch']})")
        rows.append((MIXING_LABELS[m], row))
    return markdown_grid("mixing", [f"{c} coupling" for c in couplings], rows)


def run(args):
    check_output_file(args.json, "--json")
    check_output_folder(args.out, "--out")
    start = time.perf_counter()
    runs = []
    data = {"config": {k: v for k, v in vars(args).items() if k != "run"}, "runs": runs}
    for coupling in args.couplings:
        for mixing in args.mixings:

            def save(partial):
                data["seconds"] = time.perf_counter() - start
                write_json(args.json, {**data, "runs": [*runs, partial]})

            result = train_variant(args, mixing, coupling, on_epoch=save)
            runs.append(result)
            final = f"{result['final_test_bpd']:.4f}" if "final_test_bpd" in result else "n/a"
            print(
                f"{coupling:8s} {MIXING_LABELS[mixing]:16s} test bpd: final {final}"
                + (f", best {result['best_test_bpd']:.4f} (epoch {result['best_epoch']})" if result["test_bpd"] else "")
                + (f"; {result['diverged']}" if "diverged" in result else "")
                + f"  ({result['seconds']:.0f} s)",
                flush=True,
            )
    data["table"] = markdown_table(runs, args.mixings, args.couplings)
    data["figure"] = os.path.join(args.out, "glow_ablation.png")
    data["seconds"] = time.perf_counter() - start
    write_json(args.json, data)
    _save_figure(data["figure"], runs, args.couplings)
    print(data["table"])
    print(f"figure: {data['figure']}\njson: {args.json}")
    return 0


def _save_figure(path, runs, couplings):
    plt = pyplot()

    fig, axes = plt.subplots(1, len(couplings), figsize=(5.0 * len(couplings), 3.8), squeeze=False, sharey=True)
    for ax, coupling in zip(axes[0], couplings):
        for r in runs:
            if r["coupling"] == coupling and r["epoch"]:
                ax.plot(r["epoch"], r["test_bpd"], marker="o", markersize=3, label=MIXING_LABELS[r["mixing"]])
        ax.set_title(f"{coupling} coupling")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0, 0].set_ylabel("test bits per dimension")
    fig.suptitle("Glow ablation on the 8x8 digits (lower is better)")
    save_pyplot_figure(fig, path)
