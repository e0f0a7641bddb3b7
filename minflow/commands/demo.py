"""``python -m minflow demo``: train R2 on a 2D toy density, report NLL - H, draw the figures.

The classroom demo of docs/reference-problems.md, R2: a RealNVP with 8 affine
couplings trained by maximum likelihood on fresh exact samples (batch 512,
Adam lr 1e-3, 5,000 steps), then

    test NLL = -(1/M) sum_m log q(x_m)   on M = 10^5 held-out samples,
    gap      = test NLL - H(p) = KL(p || q) + Monte Carlo error,

where H(p) is the exact density's entropy (``toy.entropy``). Held-out
samples come from the fixed seed ``TEST_SEED``, apart from the training
stream. Figures go to ``--out`` as ``demo_<dataset>_<kind>.png`` with kind
in density, samples, warping, loss; ``--json`` writes the numbers and
``--checkpoint`` the trained model (``warp --checkpoint`` animates R2's and
flow matching's).
``--model`` trains another flow of R2's size by the same recipe: maf, nsf
(spline couplings) or nsf_ar (spline autoregressive), see ``DEMO_MODELS``.
``--model cfm`` trains a continuous flow by flow matching instead
(``minflow.continuous``: a 34,442-parameter velocity field, the same data
recipe, log q by RK4 with ``--ode-steps`` steps); its figures are named
``demo_cfm_<dataset>_<kind>.png`` (those of the other non-R2 models
``demo_<model>_...``) and the warping figure shows the flow along t.
"""

import math
import os

from ..backend import make_rng
from ..checkpoint import save_checkpoint
from ..data.toy2d import TOY_DENSITIES, get_toy
from ..metrics import dataset_nll
from . import add_ode_steps_arg, add_training_args, fit_toy, positive_int, write_json
from .paths import RUNS, check_output_file, check_output_folder

__all__ = ["DEMO_MODELS", "FIGURE_KINDS", "MODELS", "TEST_SEED", "add_parser", "evaluate_nll", "run"]

# --model name -> (zoo builder, one-line description); every model has at most 40,000 parameters
DEMO_MODELS = {
    "realnvp": ("realnvp_2d", "R2 (RealNVP, 8 affine couplings)"),
    "maf": ("maf_2d", "MAF (16 affine autoregressive layers)"),
    "nsf": ("nsf_2d", "NSF (6 rational-quadratic spline couplings)"),
    "nsf_ar": ("nsf_ar_2d", "NSF-AR (autoregressive NSF: 5 spline MAF layers)"),
}
MODELS = (*DEMO_MODELS, "cfm")  # the discrete flows, or a continuous flow trained by flow matching

FIGURE_KINDS = ("density", "samples", "warping", "loss")
TEST_SEED = 1_000_003  # held-out samples: one fixed stream, never the training one
_EVAL_BATCH = 10_000


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="train RealNVP (R2, or --model) on a 2D toy density; report test NLL - entropy; draw figures",
        description=(
            "Train the R2 RealNVP (8 affine couplings) on fresh samples of a 2D toy density, report the "
            "test NLL on held-out samples, the true entropy H(p) and the gap NLL - H = KL(p || q), and "
            "write figures demo_<dataset>_{density,samples,warping,loss}.png. --model trains MAF or a neural spline "
            "flow of the same size, or (cfm) a velocity field trained by flow matching, instead."
        ),
    )
    parser.add_argument(
        "--dataset",
        choices=list(TOY_DENSITIES),
        default="moons",
        help="toy density (default: %(default)s); pinwheel and spirals are sample-only: no entropy, no gap",
    )
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="realnvp",
        help="the flow: "
        + "; ".join(f"{k}: {v[1]}" for k, v in DEMO_MODELS.items())
        + "; cfm: a velocity field trained by flow matching (default: %(default)s)",
    )
    add_ode_steps_arg(parser, 64, "for the likelihood and samples")
    add_training_args(parser, seed_help="seed of the initial weights and the training stream")
    parser.add_argument(
        "--out", default=os.path.join(RUNS, "demo"), help="folder for the figures (default: %(default)s)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument(
        "--test-samples",
        type=positive_int,
        default=100_000,
        metavar="N",
        help=f"held-out samples for the test NLL, drawn with seed {TEST_SEED} (default: %(default)s; fewer for quick runs)",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="also save the trained model to PATH (.npz; `warp --checkpoint PATH` animates it)",
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the figures (numbers only)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)
    return parser


def evaluate_nll(model, toy, n, seed=TEST_SEED):
    """Mean -log q(x) in nats over n exact samples drawn with ``seed``, as a float.

    Evaluated in batches of 10,000; the mean is accumulated in float64.
    """
    rng = make_rng(seed)
    dtype = next(iter(model.params.values())).dtype
    batches = (toy.sample(min(_EVAL_BATCH, n - start), rng, dtype) for start in range(0, n, _EVAL_BATCH))  # (B, 2)
    return dataset_nll(model.log_prob, batches)


def _check_paths(args):
    """Every path option can be written (a clear ValueError otherwise), before anything is trained."""
    if not args.no_figures:
        check_output_folder(args.out, "--out")
    if args.json:
        check_output_file(args.json, "--json")
    if args.checkpoint:
        check_output_file(args.checkpoint, "--checkpoint", example="r2.npz")


def _train_cfm(toy, args):
    """A ContinuousFlowModel trained by flow matching with the demo's recipe; (model, history)."""
    from ..continuous import ContinuousFlowModel, VelocityField, fit_flow_matching

    model = ContinuousFlowModel(VelocityField(2, rng=make_rng(args.seed)), n_steps=args.ode_steps)
    print(
        f"flow matching (velocity field MLP 42-120-120-120-2, {model.num_params():,} parameters) on {toy.name}: "
        f"{args.steps:,} steps, batch {args.batch_size}, lr {args.lr:g}, seed {args.seed}; RK4 {args.ode_steps} steps"
    )
    history = fit_toy(model, toy, args, desc=f"flow matching on {toy.name}", trainer=fit_flow_matching)
    return model, history


def run(args):
    from .. import viz, zoo

    _check_paths(args)
    toy = get_toy(args.dataset)
    if args.model == "cfm":
        model, history = _train_cfm(toy, args)
    else:
        builder, label = DEMO_MODELS[args.model]
        model = getattr(zoo, builder)(seed=args.seed)
        print(
            f"{label[:-1]}, {model.num_params():,} parameters) on {toy.name}: "
            f"{args.steps:,} steps, batch {args.batch_size}, lr {args.lr:g}, seed {args.seed}"
        )
        history = fit_toy(model, toy, args, desc=f"{label.split()[0]} on {toy.name}")
    seconds = history["seconds"]
    nll = evaluate_nll(model, toy, args.test_samples)
    entropy = toy.entropy
    gap = nll - entropy if entropy is not None else None
    results = {
        "model": args.model,
        "dataset": toy.name,
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "test_samples": args.test_samples,
        "test_seed": TEST_SEED,
        "test_nll": nll,
        "entropy": entropy,
        "gap": gap,
        "seconds": seconds,
        "ms_per_step": 1000.0 * seconds / args.steps,
    }
    if args.model == "cfm":
        results["ode_steps"] = args.ode_steps
    if not math.isfinite(nll):
        print(f"warning: the test NLL is {nll}: the model gives zero density to some held-out samples.")

    print(f"  training    {seconds:.1f} s ({results['ms_per_step']:.1f} ms per step, sampling included)")
    print(f"  test NLL    {nll:.4f} nats ({args.test_samples:,} held-out samples)")
    if gap is None:
        print(f"  entropy     n/a ({toy.name} is sample-only: no exact density)")
    else:
        print(f"  entropy H   {entropy:.4f} nats")
        print(f"  NLL - H     {gap:.4f} nats (= KL(p || q) up to Monte Carlo error)")

    if args.checkpoint:
        extra = {"dataset": toy.name, "steps": args.steps, "seed": args.seed, "model": args.model}
        save_checkpoint(args.checkpoint, model, extra=extra)
        results["checkpoint"] = args.checkpoint
        print(f"  checkpoint  {args.checkpoint}")
    if not args.no_figures:
        prefix = "demo" if args.model == "realnvp" else f"demo_{args.model}"  # R2's figures keep their names
        paths = {kind: os.path.join(args.out, f"{prefix}_{toy.name}_{kind}.png") for kind in FIGURE_KINDS}
        viz.plot_density_comparison(model, toy, paths["density"], gap=gap)
        viz.plot_samples(model, toy, seed=args.seed, path=paths["samples"])
        if args.model == "cfm":
            viz.plot_ode_warping(model, toy, paths["warping"], seed=args.seed)
        else:
            viz.plot_warping(model, toy, paths["warping"], seed=args.seed)
        if args.model == "cfm":  # the flow matching loss is a regression error, not an NLL: no entropy line
            viz.plot_loss(history, paths["loss"], label="batch loss", ylabel="flow matching loss")
        else:
            viz.plot_loss(history, paths["loss"], entropy=entropy)
        results["figures"] = paths
        print("  figures     " + ", ".join(paths.values()))
    if args.json:
        write_json(args.json, results)
        print(f"  results     {args.json}")
    return 0
