"""Flow matching, the spline flow and R2 at equal training wall time: test NLL - H on a 2D toy.

    python benchmarks/equal_time.py --dataset checkerboard      # writes benchmarks/results/equal_time_checkerboard.json

In one process, one BLAS thread (``minflow.set_threads(1)``), one after another:

    1. nsf_2d (6 spline couplings, 34,698 parameters) by the R2 recipe:
       --nsf-steps (5,000) steps, batch 512 of fresh exact samples, Adam 1e-3,
       seed 0. Its training wall time is the budget T.
    2. flow matching (``VelocityField`` as in benchmarks/cfm_toys.py, 34,442
       parameters; batch 512, Adam 1e-3, seed 0) for T: the loop stops at the
       first step that ends past T.
    3. R2 (``realnvp_2d``, 8 affine couplings) by its recipe, also for T.

Each loop times the same work per step: draw the batch, zero the gradients,
loss and backward pass, Adam step (``train.fit`` without its divergence checks,
which would cost the three models differently). The data stream of each
model is ``make_rng(seed)`` consumed as ``fit_samples`` and
``fit_flow_matching`` consume it, so nsf_2d's 5,000 steps are those of
benchmarks/spline_2d.py. Then the test NLL - H of all three on the same 10^5
held-out samples of ``python -m minflow demo``; flow matching's log q by RK4
with --ode-steps (16) steps, and, on the first --check-samples of them, how
much 2x the steps moves it. Wall times depend on the machine's load: the
three share it only because they run back to back.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from cfm_toys import mean_nll

import minflow
from minflow.backend import make_rng
from minflow.commands.demo import TEST_SEED
from minflow.continuous import ContinuousFlowModel, VelocityField
from minflow.continuous.flow_matching import flow_matching_loss_and_backward
from minflow.data.toy2d import get_toy
from minflow.optim import Adam
from minflow.zoo import nsf_2d, realnvp_2d

DATASETS = ("gaussians8", "checkerboard", "rings", "moons")


def train(model, loss_and_backward, n_steps=None, budget_s=None):
    """Adam steps until n_steps are done or the wall time passes budget_s: (steps, seconds, last loss).

    Args:
        model: anything with ``params``, ``grads`` and ``zero_grads``.
        loss_and_backward: ``f(step) -> loss``, one batch's forward and backward pass.
        n_steps: stop after this many steps (None: no step limit).
        budget_s: stop after the first step that ends past this many seconds (None: no time limit).
    """
    if (n_steps is None) == (budget_s is None):
        raise ValueError("give exactly one of n_steps and budget_s.")
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    step, start = 0, time.perf_counter()
    while True:
        model.zero_grads()
        loss = loss_and_backward(step)
        optimizer.step()
        step += 1
        seconds = time.perf_counter() - start
        if step == n_steps or (budget_s is not None and seconds > budget_s):
            return step, seconds, float(loss)


def nll_steps(model, sample, batch_size, seed):
    """``f(step) -> loss`` of maximum likelihood on fresh samples, the data stream of ``fit_samples``."""
    rng = make_rng(seed)
    return lambda step: model.nll_and_backward(sample(batch_size, rng).astype(model.dtype, copy=False))


def flow_matching_steps(model, sample, batch_size, seed):
    """``f(step) -> loss`` of flow matching on fresh samples, the data stream of ``fit_flow_matching``."""
    rng = make_rng(seed)
    dtype = model._param_dtype()
    return lambda step: flow_matching_loss_and_backward(
        model.velocity, sample(batch_size, rng).astype(dtype, copy=False), rng
    )


def run(args):
    minflow.set_threads(1)
    toy = get_toy(args.dataset)
    test = toy.sample(args.test_samples, make_rng(TEST_SEED))  # (M, 2) float32, the demo's test set
    models = {
        "nsf_2d": nsf_2d(seed=args.seed),
        "flow_matching": ContinuousFlowModel(
            VelocityField(2, hidden=(120, 120, 120), n_fourier=16, fourier_scale=4.0, rng=make_rng(args.seed))
        ),
        "realnvp_2d": realnvp_2d(seed=args.seed),
    }
    results = {}
    budget = None
    for name, model in models.items():
        make_steps = flow_matching_steps if name == "flow_matching" else nll_steps
        loss_and_backward = make_steps(model, toy.sample, args.batch_size, args.seed)
        if budget is None:  # nsf_2d: the fixed recipe sets the budget
            steps, seconds, loss = train(model, loss_and_backward, n_steps=args.nsf_steps)
            budget = seconds
        else:
            steps, seconds, loss = train(model, loss_and_backward, budget_s=budget)
        start = time.perf_counter()
        if name == "flow_matching":
            nll = mean_nll(model, test, args.ode_steps)
            check = test[: args.check_samples]
            solver_error = mean_nll(model, check, 2 * args.ode_steps) - mean_nll(model, check, args.ode_steps)
        else:
            nll, solver_error = -float(model.log_prob(test).astype(numpy.float64).mean()), None
        results[name] = {
            "params": model.num_params(),
            "steps": steps,
            "train_seconds": seconds,
            "ms_per_step": 1000 * seconds / steps,
            "final_loss": loss,
            "test_nll": nll,
            "gap": nll - toy.entropy,
            "nll_2x_ode_steps_change": solver_error,
            "eval_seconds": time.perf_counter() - start,
        }
        print(
            f"{args.dataset:<12} {name:<13} NLL - H {nll - toy.entropy:.4f}  {steps:,} steps in {seconds:.1f} s "
            f"({results[name]['ms_per_step']:.2f} ms/step)",
            flush=True,
        )
    return {"dataset": args.dataset, "entropy": toy.entropy, "budget_seconds": budget, "models": results}


def table(result):
    lines = [
        "| toy | model | parameters | steps in T | ms / step | test NLL - H |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in result["models"].items():
        solver = "" if r["nll_2x_ode_steps_change"] is None else f" (2x ODE steps: {r['nll_2x_ode_steps_change']:+.1e})"
        lines.append(
            f"| {result['dataset']} | {name} | {r['params']:,} | {r['steps']:,} | {r['ms_per_step']:.2f} | "
            f"**{r['gap']:.3f}**{solver} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, required=True)
    parser.add_argument("--nsf-steps", type=int, default=5000, help="nsf_2d's steps; their wall time is the budget")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ode-steps", type=int, default=16, help="RK4 steps for flow matching's test NLL")
    parser.add_argument("--test-samples", type=int, default=100_000)
    parser.add_argument("--check-samples", type=int, default=10_000, help="points for the 2x ODE steps check")
    parser.add_argument("--json", help="default: benchmarks/results/equal_time_<dataset>.json")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    result = run(args)
    result["meta"] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared "
        f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)",
        "numpy": numpy.__version__,
        "threads": 1,
        "args": vars(args),
    }
    path = args.json or os.path.join(HERE, "results", f"equal_time_{args.dataset}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"T = {result['budget_seconds']:.1f} s (nsf_2d's {args.nsf_steps:,} steps)")
    print(table(result))
    return result


if __name__ == "__main__":
    main()
