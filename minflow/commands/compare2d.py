"""``python -m minflow compare2d``: R2, Glow steps and R2 with batch norm on the 2D toy densities.

    python -m minflow compare2d --steps 5000 --json runs/compare2d/compare2d.json --out runs/compare2d/

Three models of the same depth, each trained with the R2 recipe (fresh
exact samples, batch 512, Adam lr 1e-3, float32) on gaussians8,
checkerboard, rings and moons:

    R2      8 affine couplings, alternating the copied coordinate (``realnvp_2d``)
    Glow    8 Glow steps: ActNorm, 2x2 invertible linear map (LU), affine
            coupling copying x[0], same conditioner (``glow_2d``)
    R2+BN   R2 with RealNVP's batch normalization after every coupling
            (``with_batch_norm``; training mode while training, evaluation
            mode, i.e. running statistics, for the test NLL and the figure)

Reported: test NLL - H(p) = KL(p || q) on 10^5 held-out samples (the fixed
stream of ``demo.TEST_SEED``), and one figure: rows the densities, columns
the truth and the three models' densities. The JSON is rewritten after each
run, so a long job can be watched.
"""

import os
import time

from ..data.toy2d import get_toy
from . import (
    add_command_parser,
    add_output_args,
    add_training_args,
    fit_toy,
    markdown_grid,
    positive_int,
    pyplot,
    save_pyplot_figure,
    write_json,
)
from .paths import check_output_file, check_output_folder

__all__ = ["DENSITIES", "MODELS", "add_parser", "build_model", "run", "with_batch_norm"]

MODELS = ("R2", "Glow", "R2+BN")
DENSITIES = ("gaussians8", "checkerboard", "rings", "moons")


def with_batch_norm(model, momentum=0.1):
    """A FlowModel with a ``BatchNorm(D)`` after each layer of ``model.flow`` (layers shared, not copied)."""
    from ..flows.batch_norm import BatchNorm
    from ..flows.flow import Flow
    from ..model import FlowModel

    features = model.event_shape[0]
    dtype = model.dtype
    layers = []
    for layer in model.flow.layers:
        layers += [layer, BatchNorm(features, momentum=momentum, dtype=dtype)]
    return FlowModel(Flow(layers), model.base, event_shape=model.event_shape)


def build_model(name, seed=0):
    """One of MODELS, float32, initialised from ``seed``."""
    from ..zoo import realnvp_2d
    from ..zoo.glow import glow_2d

    if name == "R2":
        return realnvp_2d(seed=seed)
    if name == "Glow":
        return glow_2d(seed=seed)
    if name == "R2+BN":
        return with_batch_norm(realnvp_2d(seed=seed))
    raise ValueError(f"model must be one of {MODELS}; got {name!r}.")


def add_parser(subparsers):
    p = add_command_parser(
        subparsers,
        "compare2d",
        help="R2 vs Glow steps vs R2 with batch norm on the 2D toy densities: test NLL - H, one figure",
        doc=__doc__,
    )
    add_training_args(p, seed_help="seed of the weights and the training stream")
    p.add_argument(
        "--densities", nargs="+", choices=DENSITIES, default=list(DENSITIES), help="rows (default: all four)"
    )
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="columns (default: all three)")
    p.add_argument("--test-samples", type=positive_int, default=100_000, help="held-out samples (default: %(default)s)")
    add_output_args(p, "compare2d", "compare2d.json", "compare2d.png")
    p.set_defaults(run=run)
    return p


def markdown_table(runs, densities, models):
    """Rows densities, columns models: test NLL - H in nats."""
    gap = {(r["density"], r["model"]): r["gap"] for r in runs}
    rows = [(d, [f"{gap[(d, m)]:.3f}" if (d, m) in gap else "" for m in models]) for d in densities]
    return markdown_grid("density", models, rows)


def run(args):
    from .. import viz
    from ..flows.batch_norm import set_training
    from ..train import TrainingDiverged

    check_output_file(args.json, "--json")
    check_output_folder(args.out, "--out")
    from .demo import TEST_SEED, evaluate_nll

    start = time.perf_counter()
    runs, panels = [], {}
    data = {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "test_samples": args.test_samples,
        "test_seed": TEST_SEED,
        "runs": runs,
    }
    for density in args.densities:
        toy = get_toy(density)
        panels[(density, "truth")] = viz.density_grid(toy.log_prob, toy.box, n=150)[2]
        for name in args.models:
            model = build_model(name, args.seed)
            try:
                history = fit_toy(model, toy, args, desc=f"{name} on {density}")
            except TrainingDiverged as err:
                print(f"{density} {name}: diverged: {err}", flush=True)
                runs.append({"density": density, "model": name, "diverged": str(err), "gap": float("nan")})
                continue
            set_training(model, False)  # batch norm: running statistics from here on
            nll = evaluate_nll(model, toy, args.test_samples)
            result = {
                "density": density,
                "model": name,
                "params": model.num_params(),
                "test_nll": nll,
                "entropy": toy.entropy,
                "gap": nll - toy.entropy,
                "final_train_loss": history["loss"][-1],
                "ms_per_step": 1000.0 * history["seconds"] / args.steps,
            }
            runs.append(result)
            print(
                f"{density:12s} {name:6s} NLL - H = {result['gap']:.4f} nats "
                f"(test NLL {nll:.4f}, H {toy.entropy:.4f}; {result['ms_per_step']:.1f} ms/step)",
                flush=True,
            )
            panels[(density, name)] = viz.density_grid(model.log_prob, toy.box, n=150, dtype=model.dtype)[2]
            data["seconds"] = time.perf_counter() - start
            write_json(args.json, data)
    data["table"] = markdown_table(runs, args.densities, args.models)
    data["figure"] = os.path.join(args.out, "compare2d.png")
    data["seconds"] = time.perf_counter() - start
    write_json(args.json, data)
    _save_figure(
        data["figure"], args.densities, args.models, panels, {(r["density"], r["model"]): r["gap"] for r in runs}
    )
    print(data["table"])
    print(f"figure: {data['figure']}\njson: {args.json}")
    return 0


def _save_figure(path, densities, models, panels, gaps):
    import numpy

    plt = pyplot()

    columns = ["truth", *models]
    fig, axes = plt.subplots(
        len(densities), len(columns), figsize=(2.3 * len(columns), 2.4 * len(densities)), squeeze=False
    )
    for i, density in enumerate(densities):
        (x0, x1), (y0, y1) = _box(get_toy(density).box)
        for j, column in enumerate(columns):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if (density, column) not in panels:
                ax.set_title(f"{column}: diverged", fontsize=9)
                continue
            ax.imshow(
                numpy.exp(panels[(density, column)]),
                origin="lower",
                extent=(x0, x1, y0, y1),
                cmap="viridis",
                interpolation="nearest",
            )
            title = f"{density}: p(x)" if column == "truth" else f"{column}\nNLL - H {gaps[(density, column)]:.3f}"
            ax.set_title(title, fontsize=9)
    save_pyplot_figure(fig, path)


def _box(box):
    """((x0, x1), (y0, y1)) from (lo, hi), the square [lo, hi]^2, or from ((x0, x1), (y0, y1)) itself."""
    first, second = box
    if isinstance(first, (int, float)):
        return (first, second), (first, second)
    return tuple(first), tuple(second)
