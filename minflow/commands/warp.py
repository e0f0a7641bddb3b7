"""``python -m minflow warp``: an animated GIF of R2 warping a Gaussian into a 2D toy density and back.

Trains the R2 RealNVP (docs/reference-problems.md, section 3) on the chosen toy
density, or loads it from ``--checkpoint``, then draws the points and a grid
moving through the inverse of each coupling (latent -> data) and back through
each coupling (data -> latent), interpolated between layers
(``viz.animate_warping``). Written with Matplotlib's PillowWriter: no
external programs.

Checkpoint: a ``minflow.checkpoint`` file of the model, with the dataset,
steps and seed in its ``extra``; written after training when
``--checkpoint PATH`` does not exist yet, read when it does.

``--model cfm`` animates a continuous flow trained by flow matching
instead: one frame per RK4 step (``--ode-steps``) along t, from noise to
data and back (``viz.animate_ode_warping``).
"""

import os

from ..backend import make_rng
from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..data.toy2d import TOY_DENSITIES, get_toy
from . import add_ode_steps_arg, add_training_args, fit_toy, positive_int
from .paths import RUNS, check_output_file, check_readable_file

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "warp",
        help="animate R2 warping the Gaussian into a 2D toy density and back, layer by layer (GIF)",
        description=(
            "Train the R2 RealNVP on a 2D toy density (or load it with --checkpoint) and write an animated "
            "GIF: samples and a grid move from the Gaussian to the data through each layer's inverse, then "
            "back through each layer, interpolated between layers."
        ),
    )
    parser.add_argument(
        "--dataset", choices=list(TOY_DENSITIES), default="moons", help="toy density (default: %(default)s)"
    )
    parser.add_argument("--out", metavar="PATH", help=f"GIF to write (default: {RUNS}/warp/warp_<dataset>.gif)")
    parser.add_argument(
        "--model",
        choices=("r2", "cfm"),
        default="r2",
        help="r2: RealNVP, layer by layer; cfm: flow matching, along t (default: %(default)s)",
    )
    add_ode_steps_arg(parser, 48, "one frame each")
    add_training_args(parser, seed_help="seed of the weights, the training stream and the drawn points")
    parser.add_argument(
        "--frames",
        type=positive_int,
        default=10,
        metavar="N",
        help="frames for the move through one layer (default: %(default)s)",
    )
    parser.add_argument(
        "--hold",
        type=positive_int,
        default=14,
        metavar="N",
        help="frames paused at the Gaussian and at the data (default: %(default)s)",
    )
    parser.add_argument(
        "--fps", type=positive_int, default=16, metavar="N", help="frames per second (default: %(default)s)"
    )
    parser.add_argument(
        "--points", type=positive_int, default=1000, metavar="N", help="points drawn (default: %(default)s)"
    )
    parser.add_argument(
        "--dpi",
        type=positive_int,
        default=80,
        metavar="N",
        help="resolution; the frame is 5.4 x 6 inches (default: %(default)s)",
    )
    parser.add_argument(
        "--density", action="store_true", help="draw each layer's density as a heatmap behind the points"
    )
    parser.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="load the trained model from PATH (.npz) if it exists; otherwise train and save it there",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)
    return parser


def _load_trained(model, path, dataset, name="R2"):
    """Restore ``model`` from the checkpoint at ``path``; a clear error if it was trained on another dataset."""
    extra = load_checkpoint(path, model)
    if extra.get("dataset") != dataset:
        raise CheckpointError(
            f"Checkpoint {path} holds {name} trained on {extra.get('dataset')!r}, not {dataset!r}. "
            "Pass the matching --dataset, or another --checkpoint path to train a new model."
        )


def _run_cfm(args, toy, out):
    """The --model cfm branch: train (or load) a flow matching model, animate it along t."""
    from .. import viz
    from ..continuous import ContinuousFlowModel, VelocityField, fit_flow_matching

    model = ContinuousFlowModel(VelocityField(2, rng=make_rng(args.seed)), n_steps=args.ode_steps)
    if args.checkpoint and os.path.exists(args.checkpoint):
        _load_trained(model, args.checkpoint, toy.name, name="a flow matching model")
        print(f"flow matching on {toy.name}: loaded from {args.checkpoint}")
    else:
        print(f"flow matching on {toy.name}: training {args.steps:,} steps (batch {args.batch_size}, lr {args.lr:g})")
        history = fit_toy(model, toy, args, desc=f"flow matching on {toy.name}", trainer=fit_flow_matching)
        print(f"  trained in {history['seconds']:.1f} s, last batch loss {history['loss'][-1]:.3f}")
        if args.checkpoint:
            extra = {"dataset": toy.name, "steps": args.steps, "seed": args.seed, "model": "cfm"}
            save_checkpoint(args.checkpoint, model, extra=extra)
            print(f"  saved {args.checkpoint}")
    n_frames = viz.animate_ode_warping(
        model, toy, out, hold=args.hold, fps=args.fps, n_points=args.points, seed=args.seed, dpi=args.dpi,
        title=f"flow matching on {toy.name}: dx/dt = v(x, t)",
    )  # fmt: skip
    print(f"  wrote {out}: {n_frames} frames, {n_frames / args.fps:.1f} s at {args.fps} fps")
    return 0


def run(args):
    from .. import viz
    from ..zoo import realnvp_2d

    toy = get_toy(args.dataset)
    name = f"warp_cfm_{toy.name}.gif" if args.model == "cfm" else f"warp_{toy.name}.gif"
    out = args.out or os.path.join(RUNS, "warp", name)
    check_output_file(out, "--out", example=name)
    trained = args.checkpoint and check_readable_file(args.checkpoint, "--checkpoint")
    if args.checkpoint and not trained:
        check_output_file(args.checkpoint, "--checkpoint", example=f"{args.model}.npz")
    if args.model == "cfm":
        return _run_cfm(args, toy, out)
    model = realnvp_2d(seed=args.seed)
    if trained:
        _load_trained(model, args.checkpoint, toy.name)
        print(f"R2 on {toy.name}: loaded from {args.checkpoint}")
    else:
        print(
            f"R2 on {toy.name}: training {args.steps:,} steps (batch {args.batch_size}, lr {args.lr:g}, seed {args.seed})"
        )
        history = fit_toy(model, toy, args, desc=f"R2 on {toy.name}")
        print(f"  trained in {history['seconds']:.1f} s, last batch NLL {history['loss'][-1]:.3f} nats")
        if args.checkpoint:
            save_checkpoint(args.checkpoint, model, extra={"dataset": toy.name, "steps": args.steps, "seed": args.seed})
            print(f"  saved {args.checkpoint}")
    n_frames = viz.animate_warping(
        model,
        toy,
        out,
        frames_per_layer=args.frames,
        hold=args.hold,
        fps=args.fps,
        n_points=args.points,
        density=args.density,
        seed=args.seed,
        dpi=args.dpi,
        title=f"RealNVP (R2) on {toy.name}: {len(model.flow)} affine couplings",
    )
    print(f"  wrote {out}: {n_frames} frames, {n_frames / args.fps:.1f} s at {args.fps} fps")
    return 0
