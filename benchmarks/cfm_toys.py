"""Flow matching on the 2D toys: test NLL - H beside R2 and zuko's NSF, with training wall time.

    python benchmarks/cfm_toys.py --datasets checkerboard rings --steps 20000
    python benchmarks/cfm_toys.py --table        # the table of every result written so far

For each toy density (gaussians8, checkerboard, rings, moons): a
``VelocityField`` (16 Fourier features of x with scale 4, 4 time
frequencies, MLP 42 -> 120 -> 120 -> 120 -> 2 with SiLU; 34,442 parameters)
trained by conditional flow matching on fresh exact samples (batch 512,
Adam, float32), then

    test NLL  on the 10^5 held-out samples of ``python -m minflow demo``
              (seed TEST_SEED), log q by RK4 with --ode-steps steps;
    converged the same NLL on the first --check-samples of them with
              2 x --ode-steps steps: the difference is the solver's error;
    NLL - H   against the exact entropy H(p) (reference-problems.md).

Training wall time is the loop's (sampling included, like R2's demo),
measured on a shared machine: compare it only with runs of the same session.
R2's gaps are minflow's README numbers (5,000 steps, seed 0); zuko's NSF
(5 autoregressive spline transforms, 8 bins) is reference-problems.md,
section 5 (seeds 0 / 1). Each trained model is saved to
``--checkpoint-dir``/cfm_<dataset>.npz; a later run with the same settings
evaluates it from there (e.g. with other --ode-steps) instead of training
again. Each dataset's result is written to
``--out-dir``/cfm_toys_<dataset>.json (so datasets can run in separate
processes); ``--table`` prints the Markdown table of those files.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minflow.backend import make_rng
from minflow.checkpoint import load_checkpoint, save_checkpoint
from minflow.commands import write_json
from minflow.commands.demo import TEST_SEED
from minflow.continuous import ContinuousFlowModel, VelocityField, fit_flow_matching
from minflow.data.toy2d import get_toy

DATASETS = ("gaussians8", "checkerboard", "rings", "moons")
R2_README = {"gaussians8": 0.112, "checkerboard": 0.153, "rings": 0.469, "moons": 0.020}  # seed 0, 5,000 steps
NSF_ZUKO = {
    "gaussians8": (0.021, 0.019),
    "checkerboard": (0.094, 0.074),
    "rings": (0.076, 0.063),
    "moons": (0.011, 0.008),
}
_EVAL_BATCH = 10_000


def mean_nll(model, x, n_steps):
    """-mean log q over x in nats (float64 sum), in batches."""
    total = 0.0
    for start in range(0, x.shape[0], _EVAL_BATCH):
        lp = model.log_prob(x[start : start + _EVAL_BATCH], n_steps=n_steps)
        total += float(lp.astype(numpy.float64).sum())
    return -total / x.shape[0]


def run_one(name, args):
    toy = get_toy(name)
    field = VelocityField(
        2,
        hidden=tuple(args.hidden),
        n_fourier=args.n_fourier,
        fourier_scale=args.fourier_scale,
        rng=make_rng(args.seed),
    )
    model = ContinuousFlowModel(field)
    checkpoint = os.path.join(args.checkpoint_dir, f"cfm_{name}.npz")
    if os.path.exists(checkpoint):  # evaluate a model trained by an earlier run of the same settings
        extra = load_checkpoint(checkpoint, model)
        history = {"seconds": extra["train_seconds"], "loss": [extra["final_loss"]]}
        if extra["steps"] != args.steps:
            raise SystemExit(f"{checkpoint} was trained for {extra['steps']} steps, not {args.steps}; delete it.")
    else:
        history = fit_flow_matching(
            model, toy.sample, args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, progress=False
        )
        extra = {"steps": args.steps, "train_seconds": history["seconds"], "final_loss": history["loss"][-1]}
        save_checkpoint(checkpoint, model, extra=dict(extra, dataset=name))
    test = toy.sample(args.test_samples, make_rng(TEST_SEED))  # (M, 2) float32, the demo's test set
    start = time.perf_counter()
    nll = mean_nll(model, test, args.ode_steps)
    eval_seconds = time.perf_counter() - start
    check = test[: args.check_samples]
    nll_check = mean_nll(model, check, args.ode_steps)
    nll_check_2x = mean_nll(model, check, 2 * args.ode_steps)
    result = {
        "dataset": name,
        "params": model.num_params(),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "train_seconds": history["seconds"],
        "ms_per_step": 1000 * history["seconds"] / args.steps,
        "ode_steps": args.ode_steps,
        "test_samples": args.test_samples,
        "test_nll": nll,
        "entropy": toy.entropy,
        "gap": nll - toy.entropy,
        "eval_seconds": eval_seconds,
        "check_samples": args.check_samples,
        "nll_2x_steps_change": nll_check_2x - nll_check,
        "final_loss": history["loss"][-1],
        "r2_gap_readme": R2_README[name],
        "nsf_zuko_gaps": NSF_ZUKO[name],
    }
    print(
        f"{name:<13} NLL - H {result['gap']:.4f}  (2x ODE steps: {result['nll_2x_steps_change']:+.1e})  "
        f"train {history['seconds']:.0f} s ({result['ms_per_step']:.2f} ms/step), eval {eval_seconds:.0f} s",
        flush=True,
    )
    return result


def table(results):
    lines = [
        "| dataset | flow matching NLL - H | 2x ODE steps changes it by | training time | R2 (README, 5k steps) | zuko NSF (seeds 0 / 1) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        nsf = " / ".join(f"{g:.3f}" for g in r["nsf_zuko_gaps"])
        lines.append(
            f"| {r['dataset']} | **{r['gap']:.3f}** | {r['nll_2x_steps_change']:+.1e} | "
            f"{r['train_seconds']:.0f} s ({r['steps']:,} steps) | {r['r2_gap_readme']:.3f} | {nsf} |"
        )
    return "\n".join(lines)


def result_path(out_dir, name):
    return os.path.join(out_dir, f"cfm_toys_{name}.json")


def load_results(out_dir):
    """The results written so far, in DATASETS order."""
    results = []
    for name in DATASETS:
        if os.path.exists(result_path(out_dir, name)):
            with open(result_path(out_dir, name)) as f:
                results.append(json.load(f)["result"])
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, nargs="+", default=[120, 120, 120])
    parser.add_argument("--n-fourier", type=int, default=16)
    parser.add_argument("--fourier-scale", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ode-steps", type=int, default=32, help="RK4 steps for the test NLL")
    parser.add_argument("--test-samples", type=int, default=100_000)
    parser.add_argument("--check-samples", type=int, default=10_000, help="points for the 2x-steps check")
    parser.add_argument(
        "--checkpoint-dir",
        default="runs/cfm_toys",
        help="trained models are saved here as cfm_<dataset>.npz, and evaluated from there if present",
    )
    parser.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    parser.add_argument("--table", action="store_true", help="only print the table of the results in --out-dir")
    args = parser.parse_args(argv)
    if not args.table:
        os.makedirs(args.out_dir, exist_ok=True)
        for name in args.datasets:
            result = run_one(name, args)
            meta = {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared (load average {os.getloadavg()[0]:.1f})",
                "numpy": numpy.__version__,
            }
            write_json(result_path(args.out_dir, name), {"meta": meta, "args": vars(args), "result": result})
    results = load_results(args.out_dir)
    print(table(results))
    return results


if __name__ == "__main__":
    main()
