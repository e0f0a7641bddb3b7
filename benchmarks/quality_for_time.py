"""Quality for time: how long minflow takes to reach the test quality PyTorch reaches in a fixed budget.

    python benchmarks/quality_for_time.py [--model r2|d8] [--steps N] [--json PATH]
    python benchmarks/quality_for_time.py --float64-check [--steps 5000]

Both frameworks train the same reference model (docs/reference-problems.md
section 3; ``torch_models.py``) in the same process, one training step of
each in turn, so that a busy machine slows both alike; only the training
steps are timed (drawing batches and evaluating are outside the timer):

    r2  gaussians8, batch 512 of fresh samples, Adam 1e-3; test NLL (nats)
        on 10^5 held-out points drawn once (seed 123), every --eval-every steps
    d8  8x8 digits, batch 64, epochs of 24 shuffled batches, Adam 1e-3 with
        coupled L2 5e-5; test bpd (10 fixed dequantisation draws, as
        ``zoo.d8.evaluate_bpd``) after every epoch

The target is PyTorch's test value at the end of its budget (--steps, 5,000
for r2; --epochs, 10 for d8). Reported: PyTorch's training seconds for the
budget, the step and seconds at which minflow first evaluates at or below
the target (it may run up to twice the budget), and the ratio of the two times.

``--float64-check`` trains R2 with minflow in float32 and in float64 from the
same seed and data, and reports both test NLLs and their gap (R2's float32
training should lose nothing measurable against float64).
"""

import argparse
import math
import os
import sys
import time

import numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minflow.backend import make_rng
from minflow.commands import write_json
from minflow.commands.digits import keep_freed_memory
from minflow.data.digits import N_LEVELS, load_digits
from minflow.data.toy2d import get_toy
from minflow.flows.preprocessing import dequantize
from minflow.optim import Adam
from minflow.zoo import realnvp_2d
from minflow.zoo.d8 import d8, evaluate_bpd

R2_TEST_SEED, R2_TEST_N = 123, 100_000
D8_EVAL_DRAWS = 10


# -- R2 ---------------------------------------------------------------------------------


def r2_test_set(n=R2_TEST_N):
    return get_toy("gaussians8").sample(n, make_rng(R2_TEST_SEED), numpy.float64)


def minflow_r2_trainer(dtype=numpy.float32, seed=0, test_n=R2_TEST_N):
    """(step, evaluate) of R2 in minflow: step(x) trains on a batch, evaluate() is the test NLL."""
    model = realnvp_2d(seed=seed, dtype=dtype)
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    test = r2_test_set(test_n).astype(dtype)

    def step(x):
        model.zero_grads()
        model.nll_and_backward(x.astype(dtype, copy=False))
        optimizer.step()

    return step, lambda: float(model.nll(test))


def torch_r2_trainer(seed=0, test_n=R2_TEST_N):
    import torch
    from torch_models import TorchR2

    torch.manual_seed(seed)
    model = TorchR2()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    test = torch.from_numpy(r2_test_set(test_n).astype(numpy.float32))

    def step(x):
        optimizer.zero_grad(set_to_none=False)
        loss = -model.log_prob(torch.from_numpy(x)).mean()
        loss.backward()
        optimizer.step()

    def evaluate():
        with torch.no_grad():
            return float(-model.log_prob(test).double().mean())

    return step, evaluate


def r2_batches(seed=1, batch=512):
    toy, rng = get_toy("gaussians8"), make_rng(seed)
    while True:
        yield toy.sample(batch, rng)


# -- D8 ---------------------------------------------------------------------------------


def d8_batches(seed=0, batch=64):
    """Dequantised training batches, reshuffled every epoch, the last partial batch kept; yields (epoch_end, v)."""
    images, rng = load_digits("train"), numpy.random.default_rng(seed)
    while True:
        order = rng.permutation(len(images))
        starts = range(0, len(images), batch)
        for start in starts:
            v, _ = dequantize(images[order[start : start + batch]], N_LEVELS, rng)
            yield start == starts[-1], v


def minflow_d8_trainer(seed=0):
    model = d8(seed=seed)
    optimizer = Adam(model.params, model.grads, lr=1e-3, weight_decay=5e-5)
    test = load_digits("test")

    def step(v):
        model.zero_grads()
        model.nll_and_backward(v)
        optimizer.step()

    return step, lambda: evaluate_bpd(model, test, n_draws=D8_EVAL_DRAWS)["bpd"]


def torch_d8_trainer(seed=0):
    import torch
    from torch_models import TorchD8

    torch.manual_seed(seed)
    model = TorchD8()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-5)
    test = load_digits("test")

    def step(v):
        optimizer.zero_grad(set_to_none=False)
        loss = -model.log_prob(torch.from_numpy(v)).mean()
        loss.backward()
        optimizer.step()

    def evaluate():
        # the draws of evaluate_bpd: a host generator seeded 0, one dequantisation of the test set per draw
        rng, d = numpy.random.default_rng(0), 64
        log_q = []
        with torch.no_grad():
            for _ in range(D8_EVAL_DRAWS):
                v, _ = dequantize(test, N_LEVELS, rng)
                log_q.append(model.log_prob(torch.from_numpy(v)).double().numpy())
        return float(-(numpy.mean(log_q) - d * math.log(N_LEVELS)) / (d * math.log(2)))

    return step, evaluate


# -- the race ---------------------------------------------------------------------------------


def race(trainers, batches, budget, eval_points, max_factor=2.0):
    """Train every trainer in turn on the same batches; evaluate at ``eval_points`` (step counts).

    trainers: dict name -> (step, evaluate); "torch" runs ``budget`` steps,
    the others up to ``max_factor * budget``, stopping once at or below
    torch's final value. Returns dict name -> list of (step, seconds, value).
    """
    curves = {name: [] for name in trainers}
    seconds = dict.fromkeys(trainers, 0.0)
    active = set(trainers)
    target = None
    for step_index in range(1, int(max_factor * budget) + 1):
        batch = next(batches)
        for name in list(active):
            train, evaluate = trainers[name]
            start = time.perf_counter()
            train(batch)
            seconds[name] += time.perf_counter() - start
            if step_index in eval_points:
                value = evaluate()
                curves[name].append((step_index, seconds[name], value))
                if name == "torch" and step_index >= budget:
                    target = value
                    active.discard("torch")
                elif target is not None and value <= target:
                    active.discard(name)
        if "torch" not in active and target is not None:
            for name in list(active):  # judge the values already reached against the target
                if any(v <= target for _, _, v in curves[name]):
                    active.discard(name)
        if not active:
            break
    return curves


def summarise(curves):
    torch_curve = curves["torch"]
    budget_step, torch_seconds, target = torch_curve[-1]
    out = {"target": target, "torch_steps": budget_step, "torch_seconds": torch_seconds, "curves": curves}
    for name, curve in curves.items():
        if name == "torch":
            continue
        reached = next(((s, t, v) for s, t, v in curve if v <= target), None)
        out[f"{name}_final"] = curve[-1][2]
        if reached is None:
            out[f"{name}_reached"] = False
            out[f"{name}_seconds_run"] = curve[-1][1]
            out[f"{name}_steps_run"] = curve[-1][0]
        else:
            out[f"{name}_reached"] = True
            out[f"{name}_steps_to_target"], out[f"{name}_seconds_to_target"] = reached[0], reached[1]
            out[f"ratio_{name}_time_to_target"] = reached[1] / torch_seconds
    return out


def run_r2(steps, eval_every, seed, test_n=R2_TEST_N):
    trainers = {"torch": torch_r2_trainer(seed, test_n), "minflow": minflow_r2_trainer(seed=seed, test_n=test_n)}
    eval_points = set(range(eval_every, 2 * steps + 1, eval_every)) | {steps}
    return summarise(race(trainers, r2_batches(), steps, eval_points))


def run_d8(epochs, seed):
    trainers = {"torch": torch_d8_trainer(seed), "minflow": minflow_d8_trainer(seed)}
    batches = d8_batches()
    steps_per_epoch = math.ceil(len(load_digits("train")) / 64)
    eval_points = {steps_per_epoch * e for e in range(1, 2 * epochs + 1)}
    return summarise(race(trainers, (v for _, v in batches), steps_per_epoch * epochs, eval_points))


def float64_check(steps, seed, test_n=R2_TEST_N):
    """R2 in minflow, float32 and float64, same seed and batches: test NLLs after ``steps`` steps."""
    out = {}
    for dtype in (numpy.float32, numpy.float64):
        step, evaluate = minflow_r2_trainer(dtype, seed, test_n)
        batches = r2_batches()
        start = time.perf_counter()
        for _ in range(steps):
            step(next(batches))
        out[numpy.dtype(dtype).name] = {"test_nll": evaluate(), "seconds": time.perf_counter() - start}
    out["gap_nats"] = out["float32"]["test_nll"] - out["float64"]["test_nll"]
    out["entropy"] = get_toy("gaussians8").entropy
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("r2", "d8"), help="one model (default: both)")
    parser.add_argument("--steps", type=int, default=5000, help="R2: PyTorch's budget in steps (default 5000)")
    parser.add_argument("--eval-every", type=int, default=250, help="R2: steps between evaluations (default 250)")
    parser.add_argument("--epochs", type=int, default=10, help="D8: PyTorch's budget in epochs (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation seed of both frameworks (default 0)")
    parser.add_argument("--test-n", type=int, default=R2_TEST_N, help="R2: held-out points (default 10^5)")
    parser.add_argument("--float64-check", action="store_true", help="R2 in float32 against float64 instead")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)
    keep_freed_memory()
    if args.float64_check:
        results = {"r2_float32_vs_float64": float64_check(args.steps, args.seed, args.test_n)}
        r = results["r2_float32_vs_float64"]
        print(
            f"R2 gaussians8, {args.steps} steps, seed {args.seed}: test NLL float32 {r['float32']['test_nll']:.4f}, "
            f"float64 {r['float64']['test_nll']:.4f}, gap {r['gap_nats']:+.4f} nats (H = {r['entropy']:.4f})"
        )
    else:
        results = {}
        if args.model in (None, "r2"):
            results["r2"] = run_r2(args.steps, args.eval_every, args.seed, args.test_n)
        if args.model in (None, "d8"):
            results["d8"] = run_d8(args.epochs, args.seed)
        print("| model | target (PyTorch's end) | PyTorch s | minflow s to target | ratio | minflow steps |")
        print("|---|---:|---:|---:|---:|---:|")
        for model, r in results.items():
            unit = "nats" if model == "r2" else "bpd"
            if r["minflow_reached"]:
                mf = f"{r['minflow_seconds_to_target']:.1f} | {r['ratio_minflow_time_to_target']:.2f} | "
                mf += f"{r['minflow_steps_to_target']}"
            else:
                mf = f"not reached in {r['minflow_seconds_run']:.1f} s | - | {r['minflow_steps_run']}"
            print(
                f"| {model} | {r['target']:.4f} {unit} | {r['torch_seconds']:.1f} ({r['torch_steps']} steps) | {mf} |"
            )
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
