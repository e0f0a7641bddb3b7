"""minflow's flow matching against its PyTorch twin: the same log-density, and the time of a step side by side.

    python benchmarks/cfm_compare.py --json benchmarks/results/cfm_compare.json

1. Equivalence: a VelocityField at its (random) initialisation in float64, copied into
   ``torch_cfm.TorchVelocityField``; log q(x) by RK4 (16 steps) on 500
   points in both frameworks must agree within 1e-10 nats.
2. Speed, float32, the two implementations alternated step by step after
   warm-up (ratio = median of the per-pair ratios minflow / PyTorch):
   - a training step: the flow matching loss on a batch of 512 (noise and
     times drawn outside the timer, the same for both), its backward pass
     and an Adam update;
   - the likelihood: log q on 2,000 points with 8 RK4 steps (minflow:
     hand-written forward-mode divergence; PyTorch: two autograd
     vector-Jacobian products per evaluation).
"""

import argparse
import os
import statistics
import sys
import time

import numpy
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from torch_cfm import TorchVelocityField, load_minflow_velocity, torch_flow_matching_loss, torch_log_prob

from minflow.backend import make_rng
from minflow.commands import write_json
from minflow.continuous import ContinuousFlowModel, VelocityField
from minflow.data.toy2d import get_toy
from minflow.optim import Adam


def equivalence(n_points=500, n_steps=16):
    """max |log q_minflow - log q_torch| in float64 on the same random weights."""
    rng = numpy.random.default_rng(0)
    field = VelocityField(2, dtype=numpy.float64, rng=make_rng(0))  # the default initialisation, every layer non-zero
    model = ContinuousFlowModel(field, n_steps=n_steps)
    twin = load_minflow_velocity(TorchVelocityField().double(), field)
    x = 2 * rng.standard_normal((n_points, 2))
    ours = model.log_prob(x)
    theirs = torch_log_prob(twin, torch.from_numpy(x), n_steps).numpy()
    return float(numpy.abs(ours - theirs).max()), float(numpy.abs(ours).mean())


def timed(fn, *args):
    """Seconds of fn(*args); the arguments are made before the timer starts."""
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def speed(n_repeats, n_warmup, n_eval_repeats, batch=512, n_eval=2_000, eval_steps=8):
    field = VelocityField(2, rng=make_rng(0))
    twin = load_minflow_velocity(TorchVelocityField(), field)
    optimizer = Adam(field.params, field.grads, lr=1e-3)
    torch_optimizer = torch.optim.Adam(twin.parameters(), lr=1e-3)
    model = ContinuousFlowModel(field, n_steps=eval_steps)
    toy, rng = get_toy("checkerboard"), make_rng(1)

    def minflow_step(x1, x0, t):
        field.zero_grads()
        x_t = (1 - t)[:, None] * x0 + t[:, None] * x1
        r = field.forward(x_t, t) - (x1 - x0)
        field.backward((2.0 / x1.shape[0]) * r)
        optimizer.step()

    def torch_step(x1, x0, t):
        torch_optimizer.zero_grad()
        torch_flow_matching_loss(twin, x1, x0, t).backward()
        torch_optimizer.step()

    steps = {"minflow": [], "torch": []}
    for i in range(n_warmup + n_repeats):
        x1 = toy.sample(batch, rng)
        x0 = rng.standard_normal((batch, 2)).astype(numpy.float32)
        t = rng.uniform(0, 1, batch).astype(numpy.float32)
        a = timed(minflow_step, x1, x0, t)
        b = timed(torch_step, *(torch.from_numpy(v) for v in (x1, x0, t)))
        if i >= n_warmup:
            steps["minflow"].append(a)
            steps["torch"].append(b)
    evals = {"minflow": [], "torch": []}
    x = toy.sample(n_eval, rng)
    for i in range(1 + n_eval_repeats):
        a = timed(model.log_prob, x)
        b = timed(torch_log_prob, twin, torch.from_numpy(x), eval_steps)
        if i >= 1:
            evals["minflow"].append(a)
            evals["torch"].append(b)

    def summary(times):
        return {
            "minflow_ms": 1000 * statistics.median(times["minflow"]),
            "torch_ms": 1000 * statistics.median(times["torch"]),
            "ratio": statistics.median(a / b for a, b in zip(times["minflow"], times["torch"])),
        }

    return {"train_step": summary(steps), "log_prob_2k_8_rk4_steps": summary(evals)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--eval-repeats", type=int, default=5)
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)
    max_diff, scale = equivalence()
    print(f"log q, float64, same weights: max |minflow - PyTorch| = {max_diff:.2e} nats (|log q| ~ {scale:.2f})")
    results = {
        "equivalence_max_abs_diff": max_diff,
        "threads": {"torch": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "load_average": list(os.getloadavg()),
    }
    results.update(speed(args.repeats, args.warmup, args.eval_repeats))
    print("| what | minflow ms | PyTorch ms | ratio minflow / PyTorch |")
    print("|---|---|---|---|")
    for key in ("train_step", "log_prob_2k_8_rk4_steps"):
        r = results[key]
        print(f"| {key} | {r['minflow_ms']:.2f} | {r['torch_ms']:.2f} | {r['ratio']:.2f} |")
    if args.json:
        write_json(args.json, results)
    if max_diff > 1e-10:
        raise SystemExit(f"log-densities differ by {max_diff:.2e} > 1e-10")
    return results


if __name__ == "__main__":
    main()
