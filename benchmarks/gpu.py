"""Seconds per training step on a GPU: minflow on CuPy, PyTorch on CUDA, and both on the CPU.

    python benchmarks/gpu.py [--steps 50] [--cpu-steps N] [--warmup 5] [--only r2|d8] [--json PATH] [--markdown PATH]
    python benchmarks/gpu.py --cpu-only --steps 2      # no GPU: the CPU rows only (a smoke test)

The cases are R2 (8 affine couplings, gaussians8, Adam 1e-3) at batch 512
and 65,536, and D8 (multi-scale RealNVP on the 8x8 digits, Adam 1e-3,
coupled L2 5e-5) at batch 64 and 512, with the architectures of
docs/reference-problems.md section 3: ``minflow.zoo`` for minflow (moved to the
GPU with ``model.to(cupy)``) and ``torch_models.py`` for PyTorch (moved with
``.cuda()``). Implementations, one row each:

    minflow-cupy   minflow, parameters and batches on the GPU (CuPy)
    torch-cuda     PyTorch on the same GPU
    minflow-numpy  minflow on the CPU (NumPy), the baseline of the 10x check
    torch-cpu      PyTorch on the CPU (only with --cpu-only, where torch is installed)

A step is forward + backward + optimizer update. Batches are drawn on the host
and moved to the device before the clock starts (a few, used in turn); after
``--warmup`` steps the clock runs over ``--steps`` steps (``--cpu-steps`` for the
CPU rows, whose steps are far longer) and stops after the
device has finished them (``synchronize``), so seconds/step = total / steps.

Two targets, printed at the end and stored in the JSON: D8 at batch 512 on
CuPy at least 10x faster per image than minflow on the CPU (same batch, so the
ratio of seconds per step; ``d8_512_speedup_cupy_vs_cpu``), and its step
within 3x of PyTorch CUDA's (``d8_512_cupy_over_torch_cuda``, minflow's seconds
over PyTorch's). The CPU rows use the threads the process is given
(``OMP_NUM_THREADS``, ``taskset``); ``machine.cpu_threads`` records them.

Without CuPy and a GPU (or without PyTorch with CUDA) the script stops at
once with a message saying what is missing; ``--cpu-only`` runs the CPU rows.
"""

import argparse
import os
import platform
import sys
import time

import numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minflow.backend import to_device
from minflow.commands import write_json
from minflow.data.digits import N_LEVELS, load_digits
from minflow.data.toy2d import get_toy
from minflow.flows.preprocessing import dequantize
from minflow.optim import Adam
from minflow.zoo import realnvp_2d
from minflow.zoo.d8 import d8

CPU_IMPLEMENTATIONS = ("minflow-numpy", "torch-cpu")
CASES = (("r2", 512), ("r2", 65_536), ("d8", 64), ("d8", 512))
N_BATCHES = 4  # distinct batches per case, prepared before timing and used in turn
HERE = os.path.dirname(os.path.abspath(__file__))


class MissingGPU(RuntimeError):
    """CuPy, a GPU or PyTorch with CUDA is missing for a GPU run."""


def require_cupy():
    """The cupy module, or MissingGPU saying what to install or check."""
    try:
        import cupy
    except ImportError as err:
        raise MissingGPU(
            "benchmarks/gpu.py needs CuPy and an NVIDIA GPU: install `pip install -r requirements-gpu.txt` "
            "(cupy-cuda12x) on a machine with CUDA, or run the CPU rows only with --cpu-only."
        ) from err
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:
        raise MissingGPU(
            f"CuPy is installed but cannot reach a GPU ({err}); check `nvidia-smi`, or use --cpu-only."
        ) from err
    if n == 0:
        raise MissingGPU("CuPy is installed but no NVIDIA GPU was found; use --cpu-only.")
    return cupy


def require_torch(cuda):
    """The torch module (with CUDA if ``cuda``), or MissingGPU / None where it is optional."""
    try:
        import torch
    except ImportError as err:
        if not cuda:
            return None
        raise MissingGPU(
            "benchmarks/gpu.py compares with PyTorch on CUDA: install a CUDA build of torch, "
            "or pass --no-torch to time minflow only."
        ) from err
    if cuda and not torch.cuda.is_available():
        raise MissingGPU(
            f"PyTorch {torch.__version__} is installed without a usable CUDA device (a CPU build?); "
            "install a CUDA build of torch, or pass --no-torch to time minflow only."
        )
    return torch


# -- host batches -------------------------------------------------------------------------


def host_batches(model, batch):
    """N_BATCHES float32 host batches of ``model`` ('r2': gaussians8, 'd8': dequantised digits)."""
    rng = numpy.random.default_rng(1)
    if model == "r2":
        toy = get_toy("gaussians8")
        return [numpy.asarray(toy.sample(batch, rng), dtype=numpy.float32) for _ in range(N_BATCHES)]
    images = load_digits("train")
    out = []
    for _ in range(N_BATCHES):
        rows = rng.choice(len(images), batch, replace=batch > len(images))
        v, _ = dequantize(images[rows], N_LEVELS, rng)
        out.append(numpy.asarray(v, dtype=numpy.float32))
    return out


# -- one training step per implementation: (step(batch), synchronize(), device batches) -----


def minflow_case(model, batch, xp):
    """minflow's model on ``xp`` (numpy or cupy): step, synchronize, batches on that device."""
    net = realnvp_2d(seed=0) if model == "r2" else d8(seed=0)
    net.to(xp)
    optimizer = Adam(net.params, net.grads, lr=1e-3, weight_decay=0.0 if model == "r2" else 5e-5)

    def step(x):
        net.zero_grads()
        net.nll_and_backward(x)
        optimizer.step()

    if xp is numpy:
        synchronize = lambda: None
    else:
        synchronize = xp.cuda.Device().synchronize
    return step, synchronize, [to_device(b, xp) for b in host_batches(model, batch)]


def torch_case(model, batch, torch, device):
    """The PyTorch model on ``device`` ('cuda' or 'cpu'): step, synchronize, batches there."""
    from torch_models import TorchD8, TorchR2

    torch.manual_seed(0)
    net = (TorchR2() if model == "r2" else TorchD8()).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=0.0 if model == "r2" else 5e-5)

    def step(x):
        optimizer.zero_grad(set_to_none=False)  # zeroed in place, as minflow does
        loss = -net.log_prob(x).mean()
        loss.backward()
        optimizer.step()

    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return step, synchronize, [torch.from_numpy(b).to(device) for b in host_batches(model, batch)]


def seconds_per_step(step, synchronize, batches, n_warmup, n_steps):
    """Mean seconds of a step over n_steps, after n_warmup, with the device drained before and after."""
    for i in range(n_warmup):
        step(batches[i % len(batches)])
    synchronize()
    start = time.perf_counter()
    for i in range(n_steps):
        step(batches[i % len(batches)])
    synchronize()
    return (time.perf_counter() - start) / n_steps


# -- the run --------------------------------------------------------------------------------


def implementations(cpu_only, no_torch):
    """{name: make(model, batch) -> (step, synchronize, batches)}; raises MissingGPU for a GPU run without one."""
    impls = {}
    if not cpu_only:
        cupy = require_cupy()
        impls["minflow-cupy"] = lambda m, b: minflow_case(m, b, cupy)
        if not no_torch:
            torch = require_torch(cuda=True)
            impls["torch-cuda"] = lambda m, b: torch_case(m, b, torch, "cuda")
    impls["minflow-numpy"] = lambda m, b: minflow_case(m, b, numpy)
    if cpu_only and not no_torch:
        torch = require_torch(cuda=False)
        if torch is not None:
            impls["torch-cpu"] = lambda m, b: torch_case(m, b, torch, "cpu")
    return impls


def run(cases, impls, n_warmup, n_steps, n_cpu_steps):
    """One row per (model, batch, implementation): seconds per step and per image (n_cpu_steps on the CPU)."""
    rows = []
    for model, batch in cases:
        for name, make in impls.items():
            step, synchronize, batches = make(model, batch)
            on_cpu = name in CPU_IMPLEMENTATIONS
            s = seconds_per_step(step, synchronize, batches, n_warmup, n_cpu_steps if on_cpu else n_steps)
            rows.append(
                {
                    "model": model,
                    "batch": batch,
                    "implementation": name,
                    "seconds_per_step": s,
                    "steps": n_cpu_steps if on_cpu else n_steps,
                    "microseconds_per_sample": 1e6 * s / batch,
                }
            )
            print(f"{model} batch {batch:>6} {name:<14} {s:.4g} s/step", flush=True)
    return rows


def step_seconds(rows, model, batch, implementation):
    """Seconds per step of one row, or None where that row was not run."""
    return next(
        (
            r["seconds_per_step"]
            for r in rows
            if (r["model"], r["batch"], r["implementation"]) == (model, batch, implementation)
        ),
        None,
    )


def targets(rows):
    """The D8-at-512 targets: (CuPy's speedup over the CPU, CuPy seconds / PyTorch CUDA seconds); None if not run."""
    cupy = step_seconds(rows, "d8", 512, "minflow-cupy")
    cpu = step_seconds(rows, "d8", 512, "minflow-numpy")
    torch_cuda = step_seconds(rows, "d8", 512, "torch-cuda")
    speedup = cpu / cupy if cupy and cpu else None
    over_torch = cupy / torch_cuda if cupy and torch_cuda else None
    return speedup, over_torch


def verdicts(speedup, over_torch):
    """Two lines saying whether each target is met."""
    first = (
        "not measured (no minflow-cupy row)"
        if speedup is None
        else f"{speedup:.3g}x per image: {'meets' if speedup >= 10 else 'MISSES'} the 10x target"
    )
    second = (
        "not measured (no minflow-cupy or torch-cuda row)"
        if over_torch is None
        else f"{over_torch:.3g}x PyTorch's step time: {'meets' if over_torch <= 3 else 'MISSES'} the 3x target"
    )
    return [
        f"D8 at batch 512, minflow on CuPy vs on NumPy: {first}.",
        f"D8 at batch 512, minflow on CuPy vs PyTorch on CUDA: {second}.",
    ]


def speedups(rows):
    """CPU (minflow-numpy) seconds / each implementation's seconds, per case."""
    cpu = {(r["model"], r["batch"]): r["seconds_per_step"] for r in rows if r["implementation"] == "minflow-numpy"}
    for r in rows:
        base = cpu.get((r["model"], r["batch"]))
        r["speedup_vs_minflow_numpy"] = base / r["seconds_per_step"] if base else None
    return rows


def markdown_table(rows):
    lines = [
        "| model | batch | implementation | s / step | us / sample | x vs minflow-numpy |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        x = r["speedup_vs_minflow_numpy"]
        lines.append(
            f"| {r['model'].upper()} | {r['batch']:,} | {r['implementation']} | {r['seconds_per_step']:.4g} "
            f"| {r['microseconds_per_sample']:.3g} | {'' if x is None else f'{x:.3g}'} |"
        )
    return "\n".join(lines)


def machine():
    info = {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "cpu": platform.processor() or platform.machine(),
    }
    info["cpu_count"] = os.cpu_count()
    info["cpu_threads"] = {
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        info["cupy"] = cupy.__version__
    except Exception:  # noqa: BLE001 (no GPU: recorded as absent)
        info["gpu"] = None
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per case (default 50)")
    parser.add_argument(
        "--cpu-steps", type=int, help="timed steps of the CPU rows (default: --steps); a GPU step is far shorter"
    )
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--only", choices=("r2", "d8"), help="time one model only")
    parser.add_argument("--cpu-only", action="store_true", help="no GPU: the CPU rows only")
    parser.add_argument("--no-torch", action="store_true", help="minflow rows only")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "gpu.json"))
    parser.add_argument("--markdown", default=os.path.join(HERE, "results", "gpu.md"))
    args = parser.parse_args(argv)
    args.cpu_steps = args.steps if args.cpu_steps is None else args.cpu_steps
    if min(args.steps, args.cpu_steps) < 1 or args.warmup < 0:
        parser.error(
            f"--steps and --cpu-steps must be >= 1 and --warmup >= 0; got {args.steps}, {args.cpu_steps} "
            f"and {args.warmup}."
        )
    try:
        impls = implementations(args.cpu_only, args.no_torch)
    except MissingGPU as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cases = [c for c in CASES if args.only in (None, c[0])]
    rows = speedups(run(cases, impls, args.warmup, args.steps, args.cpu_steps))
    table = markdown_table(rows)
    speedup, over_torch = targets(rows)
    lines = verdicts(speedup, over_torch)
    result = {
        "machine": machine(),
        "steps": args.steps,
        "cpu_steps": args.cpu_steps,
        "warmup": args.warmup,
        "rows": rows,
        "d8_512_speedup_cupy_vs_cpu": speedup,
        "d8_512_cupy_over_torch_cuda": over_torch,
    }
    for path in (args.json, args.markdown):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_json(args.json, result)
    with open(args.markdown, "w") as f:
        f.write(table + "\n\n" + "\n".join(lines) + "\n")
    print(table)
    print("\n".join(lines))
    print(f"wrote {args.json} and {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
