"""minflow against PyTorch on the reference models, side by side, in one run.

    python benchmarks/compare.py [--model r2] [--only minflow|torch] [--json PATH]

For each model: median seconds per training step (forward + backward +
optimizer update; drawing the batch is outside the timer), timed
interleaved (one minflow step, one PyTorch step, ...) after warm-up so a
busy neighbour slows both alike; the ratio minflow / PyTorch as the median
of the per-pair ratios; the same for sampling; and peak memory of a training
step. Memory is measured as the peak resident-set growth (RSS, from
/proc/self/status VmHWM) of a fresh subprocess running only that framework,
so both frameworks are measured the same way.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minflow  # noqa: E402
from minflow.backend import make_rng  # noqa: E402
from minflow.data.toy2d import get_toy  # noqa: E402
from minflow.optim import Adam  # noqa: E402
from minflow.zoo import realnvp_2d  # noqa: E402

MODELS = ("r2",)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# -- one "case" per model and framework: a step function and a sample function --


def minflow_r2(batch=512):
    model = realnvp_2d(seed=0)
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    toy, rng = get_toy("gaussians8"), make_rng(1)

    def make_batch():
        return toy.sample(batch, rng)

    def step(x):
        model.zero_grads()
        model.nll_and_backward(x)
        optimizer.step()

    def sample(n):
        return model.sample(n, make_rng(2))

    return make_batch, step, sample


def torch_r2(batch=512):
    torch = _torch()
    from torch_models import TorchR2

    torch.manual_seed(0)
    model = TorchR2()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    toy, rng = get_toy("gaussians8"), make_rng(1)

    def make_batch():
        return torch.from_numpy(toy.sample(batch, rng))

    def step(x):
        optimizer.zero_grad()
        loss = -model.log_prob(x).mean()
        loss.backward()
        optimizer.step()

    def sample(n):
        return model.sample(n)

    return make_batch, step, sample


CASES = {("r2", "minflow"): minflow_r2, ("r2", "torch"): torch_r2}
SAMPLE_SIZES = {"r2": 10_000}


def time_call(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def interleaved(cases, n_warmup, n_repeats, sample_n):
    """Median step and sample seconds for each case, timed alternately."""
    step_times = {name: [] for name in cases}
    sample_times = {name: [] for name in cases}
    for i in range(n_warmup + n_repeats):
        for name, (make_batch, step, sample) in cases.items():
            x = make_batch()  # outside the timer
            t = time_call(step, x)
            if i >= n_warmup:
                step_times[name].append(t)
    for i in range(max(3, n_repeats // 20)):
        for name, (_, _, sample) in cases.items():
            sample_times[name].append(time_call(sample, sample_n))
    return step_times, sample_times


def _proc_status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MB
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def memory_probe(model, framework, n_steps):
    """In this process: peak RSS growth (MB) over n_steps training steps.

    The kernel's high-water mark is reset (``/proc/self/clear_refs``) after
    the model is built and one step has run, so imports, the model's own
    parameters and one-off allocations are excluded: what remains is the
    memory a training step needs on top (activations, gradients in flight).
    """
    make_batch, step, _ = CASES[(model, framework)]()
    step(make_batch())
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = _proc_status_mb("VmRSS")
    for _ in range(n_steps):
        step(make_batch())
    return _proc_status_mb("VmHWM") - base


def peak_rss_mb(model, framework, n_steps):
    """``memory_probe`` run in a fresh subprocess, so frameworks do not share a heap."""
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-probe", model, framework, str(n_steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def machine_description():
    try:
        import threadpoolctl
    except ImportError:
        return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {numpy.__version__}"
    info = threadpoolctl.threadpool_info()
    blas = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)" for i in info)
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {numpy.__version__} [{blas}]"


def run(models, only, n_warmup, n_repeats, memory_steps):
    torch = _torch()
    results = {}
    for model in models:
        frameworks = ["minflow"] + (["torch"] if torch is not None else [])
        if only:
            frameworks = [f for f in frameworks if f == only]
        cases = {f: CASES[(model, f)]() for f in frameworks}
        step_times, sample_times = interleaved(cases, n_warmup, n_repeats, SAMPLE_SIZES[model])
        row = {}
        for f in frameworks:
            row[f"{f}_step_s"] = statistics.median(step_times[f])
            row[f"{f}_sample_s"] = statistics.median(sample_times[f])
            row[f"{f}_peak_mb"] = peak_rss_mb(model, f, memory_steps)
        if "minflow" in frameworks and "torch" in frameworks:
            pairs = [a / b for a, b in zip(step_times["minflow"], step_times["torch"])]
            row["ratio_step"] = statistics.median(pairs)
            pairs = [a / b for a, b in zip(sample_times["minflow"], sample_times["torch"])]
            row["ratio_sample"] = statistics.median(pairs)
            row["ratio_peak_mb"] = row["minflow_peak_mb"] / max(row["torch_peak_mb"], 1e-9)
        results[model] = row
    return results


def print_table(results):
    print(f"{'model':<6} {'framework':<9} {'step ms':>9} {'sample ms':>10} {'peak MB':>8}")
    for model, row in results.items():
        for f in ("minflow", "torch"):
            if f"{f}_step_s" in row:
                print(f"{model:<6} {f:<9} {1e3 * row[f'{f}_step_s']:9.2f} {1e3 * row[f'{f}_sample_s']:10.2f} {row[f'{f}_peak_mb']:8.1f}")
        if "ratio_step" in row:
            print(f"{model:<6} {'ratio':<9} {row['ratio_step']:9.2f} {row['ratio_sample']:10.2f} {row['ratio_peak_mb']:8.2f}   (minflow / PyTorch)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=MODELS, help="one model (default: all)")
    parser.add_argument("--only", choices=("minflow", "torch"), help="time one framework alone")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (default 20)")
    parser.add_argument("--repeats", type=int, default=200, help="timed steps per framework (default 200)")
    parser.add_argument("--memory-steps", type=int, default=5, help="steps in the memory subprocess (default 5)")
    parser.add_argument("--json", help="write the results as JSON here")
    parser.add_argument("--memory-probe", nargs=3, metavar=("MODEL", "FRAMEWORK", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        model, framework, n_steps = args.memory_probe
        print(memory_probe(model, framework, int(n_steps)))
        return None
    models = [args.model] if args.model else list(MODELS)
    print(f"minflow {minflow.__version__} on {machine_description()}")
    results = run(models, args.only, args.warmup, args.repeats, args.memory_steps)
    print_table(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_description(), "results": results}, f, indent=2)
    return results


if __name__ == "__main__":
    main()
