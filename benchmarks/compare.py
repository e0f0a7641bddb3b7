"""minflow against PyTorch on the reference models R2, P2 and D8, side by side, in one run.

    python benchmarks/compare.py [--model r2|p2|d8] [--only minflow|torch] [--json PATH]

The models are those of docs/reference-problems.md section 3, written once in
minflow (``minflow.zoo``) and once in PyTorch (``torch_models.py``) with the
same architecture, initialisation scheme, batch and optimizer:

    r2  R2 on gaussians8: 8 affine couplings, batch 512, Adam 1e-3
    p2  P2 planar K=32 on the energy U1, reverse KL, batch 256, Adam 5e-3
    d8  D8 on the 8x8 digits, batch 64, Adam 1e-3, coupled L2 5e-5; minflow
        twice: with cached activations ("minflow") and with memory by
        inversion (``set_recompute("invert")``, "minflow_invert")

For each model and implementation it reports:

- the median seconds per training step (forward + backward + optimizer
  update; drawing the batch is outside the timer), timed interleaved (one
  step of each implementation in turn) after warm-up, so that a busy
  neighbour slows all alike; the ratio minflow / PyTorch is the median of
  the per-pair ratios;
- the same for sampling 10^4 points (r2, p2) or 10^3 images (d8);
- peak memory of a training step, measured in a fresh subprocess per
  implementation over a few steps of a warm model, above the state between
  steps (parameters, gradients and optimizer state excluded), two ways:
  *allocated*: the peak of the bytes the framework's own arrays hold, as its
  allocator counts them: ``tracemalloc`` for minflow (NumPy reports every
  array buffer to it), the memory events of ``torch.profiler`` for PyTorch
  (every tensor allocation and release of its CPU allocator);
  *RSS*: the growth of the resident set (VmHWM of /proc/self/status), with
  glibc told to map every block of 4 KB or more on its own and to give freed
  memory back at once (``mallopt``). RSS also sees the libraries' own
  buffers, but at the scale of D8 (12 MB) it is not a count of live arrays:
  pages are reused and touched lazily, so it can read below the bytes the
  framework holds (see benchmarks/RESULTS.md). The ratio uses the allocated
  bytes.

Timing runs with the default threads of both libraries, and with glibc's
malloc told to keep freed memory (``commands.digits.keep_freed_memory``, what
``python -m minflow digits`` does) unless ``--no-malloc-tuning``.
"""

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minflow
from minflow.backend import make_rng, set_backend
from minflow.commands import write_json
from minflow.commands.digits import keep_freed_memory
from minflow.data.digits import N_LEVELS, load_digits
from minflow.data.energy import get_energy
from minflow.data.toy2d import get_toy
from minflow.flows.preprocessing import dequantize
from minflow.optim import Adam
from minflow.zoo import realnvp_2d
from minflow.zoo.d8 import d8
from minflow.zoo.p2 import planar_2d

MODELS = ("r2", "p2", "d8")
IMPLEMENTATIONS = {"r2": ("minflow", "torch"), "p2": ("minflow", "torch"), "d8": ("minflow", "minflow_invert", "torch")}
SAMPLE_SIZES = {"r2": 10_000, "p2": 10_000, "d8": 1_000}
DEFAULT_REPEATS = {"r2": 200, "p2": 200, "d8": 40}
BATCH = {"r2": 512, "p2": 256, "d8": 64}
P2_LAYERS, P2_TARGET = 32, "U1"


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# -- one case per model and implementation: (make_batch, step, sample) ------------------
# make_batch() runs outside the timer; step(batch) is forward + backward + update.


def _gaussians8_batches(batch, to_framework=lambda a: a):
    toy, rng = get_toy("gaussians8"), make_rng(1)
    return lambda: to_framework(toy.sample(batch, rng))


def _digit_batches(batch, to_framework=lambda a: a):
    images, rng = load_digits("train"), numpy.random.default_rng(0)

    def make_batch():
        v, _ = dequantize(images[rng.choice(len(images), batch, replace=False)], N_LEVELS, rng)
        return to_framework(v)

    return make_batch


def _minflow_nll_step(model, optimizer):
    """One maximum-likelihood training step of a minflow model: forward, backward, update."""

    def step(x):
        model.zero_grads()
        model.nll_and_backward(x)
        optimizer.step()

    return step


def _torch_nll_step(model, optimizer):
    """The same step in PyTorch."""

    def step(x):
        optimizer.zero_grad(set_to_none=False)  # zeroed in place, as minflow does
        loss = -model.log_prob(x).mean()
        loss.backward()
        optimizer.step()

    return step


def minflow_r2():
    model = realnvp_2d(seed=0)
    optimizer = Adam(model.params, model.grads, lr=1e-3)

    return _gaussians8_batches(BATCH["r2"]), _minflow_nll_step(model, optimizer), lambda n: model.sample(n, make_rng(2))


def torch_r2():
    torch = _torch()
    from torch_models import TorchR2

    torch.manual_seed(0)
    model = TorchR2()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    return _gaussians8_batches(BATCH["r2"], torch.from_numpy), _torch_nll_step(model, optimizer), model.sample


def minflow_p2():
    model = planar_2d(P2_LAYERS, seed=0)
    optimizer = Adam(model.params, model.grads, lr=5e-3)
    target, rng = get_energy(P2_TARGET), make_rng(1)

    def step(_):
        model.zero_grads()
        model.reverse_kl_and_backward(target, BATCH["p2"], rng)  # draws its own base noise
        optimizer.step()

    return lambda: None, step, lambda n: model.sample(n, make_rng(2))


def torch_p2():
    torch = _torch()
    from torch_models import TorchP2, torch_energy

    torch.manual_seed(0)
    model = TorchP2(P2_LAYERS)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    energy = torch_energy(P2_TARGET)

    def step(_):
        optimizer.zero_grad(set_to_none=False)  # zeroed in place, as minflow does
        x, log_q = model.sample_and_log_prob(BATCH["p2"])
        loss = (log_q + energy(x)).mean()
        loss.backward()
        optimizer.step()

    return lambda: None, step, model.sample


def minflow_d8(recompute=None):
    model = d8(seed=0).set_recompute(recompute)
    optimizer = Adam(model.params, model.grads, lr=1e-3, weight_decay=5e-5)

    return _digit_batches(BATCH["d8"]), _minflow_nll_step(model, optimizer), lambda n: model.sample(n, make_rng(2))


def torch_d8():
    torch = _torch()
    from torch_models import TorchD8

    torch.manual_seed(0)
    model = TorchD8()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-5)

    return _digit_batches(BATCH["d8"], torch.from_numpy), _torch_nll_step(model, optimizer), model.sample


CASES = {
    ("r2", "minflow"): minflow_r2,
    ("r2", "torch"): torch_r2,
    ("p2", "minflow"): minflow_p2,
    ("p2", "torch"): torch_p2,
    ("d8", "minflow"): minflow_d8,
    ("d8", "minflow_invert"): lambda: minflow_d8("invert"),
    ("d8", "torch"): torch_d8,
}


# -- timing ------------------------------------------------------------------------------


def time_call(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def interleaved(cases, n_warmup, n_repeats, sample_n, n_sample_repeats):
    """Step and sample seconds of each case, timed alternately (lists, one entry per round)."""
    step_times = {name: [] for name in cases}
    sample_times = {name: [] for name in cases}
    for i in range(n_warmup + n_repeats):
        for name, (make_batch, step, _) in cases.items():
            batch = make_batch()  # outside the timer
            t = time_call(step, batch)
            if i >= n_warmup:
                step_times[name].append(t)
    for i in range(1 + n_sample_repeats):
        for name, (_, _, sample) in cases.items():
            t = time_call(sample, sample_n)
            if i >= 1:  # the first draw is warm-up
                sample_times[name].append(t)
    return step_times, sample_times


# -- memory, in a fresh subprocess per implementation -------------------------------------


def _proc_status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MB
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def _malloc_follows_live_memory():
    """glibc: mmap every block >= 4 KB on its own and trim freed memory at once, so RSS tracks live arrays."""
    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3
    if not (libc.mallopt(m_mmap_threshold, 4 << 10) and libc.mallopt(m_trim_threshold, 0)):
        raise RuntimeError("mallopt failed: the memory probe needs Linux with glibc")


def _allocated_peak_mb(implementation, step, batch):
    """Peak growth (MB) of the bytes held by the framework's arrays during one step (see the module docstring)."""
    if implementation.startswith("minflow"):
        tracemalloc.start()
        step(batch)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak / 2**20
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(batch)
    # one event per allocation (+ bytes) and release (- bytes), in time order
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    held = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        held += event.nbytes()
        peak = max(peak, held)
    return peak / 2**20


def memory_probe(model, implementation, n_steps):
    """Peak RSS growth (MB) over n_steps training steps of a warm model, and the allocated peak of one more step.

    The kernel's high-water mark is reset (``/proc/self/clear_refs``) after
    the model is built and two steps have run, so imports, parameters,
    gradients, optimizer state and one-off allocations are excluded: what
    remains is what a training step needs on top (activations, temporaries).
    """
    make_batch, step, _ = CASES[(model, implementation)]()
    _malloc_follows_live_memory()  # again after the case is built: importing torch changes glibc's thresholds
    batches = [make_batch() for _ in range(n_steps + 3)]
    step(batches[0])
    step(batches[1])
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = _proc_status_mb("VmRSS")
    for batch in batches[2:-1]:
        step(batch)
    rss_mb = _proc_status_mb("VmHWM") - base
    return {"rss_mb": rss_mb, "allocated_mb": _allocated_peak_mb(implementation, step, batches[-1])}


def peak_memory(model, implementation, n_steps):
    """``memory_probe`` run in a fresh subprocess, so implementations share no heap."""
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-probe", model, implementation, str(n_steps)]
    # glibc reads these before the first allocation, so no import leaves resident free blocks to reuse
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.mmap_threshold=4096:glibc.malloc.trim_threshold=0")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the run --------------------------------------------------------------------------------


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {numpy.__version__}"
    torch = _torch()
    if torch is not None:
        text += f", PyTorch {torch.__version__} ({torch.get_num_threads()} threads)"
    try:
        import threadpoolctl
    except ImportError:
        return text
    blas = [
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')} ({i.get('num_threads')} threads)"
        for i in threadpoolctl.threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return text + f"; BLAS: {', '.join(blas)}"


def load_average():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def run(models, only, n_warmup, n_repeats, n_sample_repeats, memory_steps, sample_n=None):
    torch = _torch()
    results = {}
    for model in models:
        names = [i for i in IMPLEMENTATIONS[model] if i.startswith("minflow") or torch is not None]
        if only:
            names = [i for i in names if i.startswith(only)]
        cases = {name: CASES[(model, name)]() for name in names}
        repeats = n_repeats or DEFAULT_REPEATS[model]
        n_points = sample_n or SAMPLE_SIZES[model]
        step_times, sample_times = interleaved(cases, n_warmup, repeats, n_points, n_sample_repeats)
        row = {"batch": BATCH[model], "sample_n": n_points, "repeats": repeats}
        for name in names:
            memory = peak_memory(model, name, memory_steps)
            row[f"{name}_step_s"] = statistics.median(step_times[name])
            row[f"{name}_sample_s"] = statistics.median(sample_times[name])
            row[f"{name}_peak_mb"] = memory["allocated_mb"]
            row[f"{name}_peak_rss_mb"] = memory["rss_mb"]
        if "torch" in names:
            for name in names:
                if name == "torch":
                    continue
                suffix = name[len("minflow") :]  # "" or "_invert"
                pairs = [a / b for a, b in zip(step_times[name], step_times["torch"])]
                row[f"ratio_step{suffix}"] = statistics.median(pairs)
                pairs = [a / b for a, b in zip(sample_times[name], sample_times["torch"])]
                row[f"ratio_sample{suffix}"] = statistics.median(pairs)
                row[f"ratio_peak_mb{suffix}"] = row[f"{name}_peak_mb"] / max(row["torch_peak_mb"], 1e-9)
                row[f"ratio_peak_rss_mb{suffix}"] = row[f"{name}_peak_rss_mb"] / max(row["torch_peak_rss_mb"], 1e-9)
        results[model] = row
    return results


def print_table(results):
    """A Markdown table: one line per implementation, then the ratios."""
    print("| model | implementation | step ms | sample ms | peak MB (allocated) | peak MB (RSS) |")
    print("|---|---|---:|---:|---:|---:|")
    for model, row in results.items():
        for name in IMPLEMENTATIONS[model]:
            if f"{name}_step_s" not in row:
                continue
            print(
                f"| {model} | {name} | {1e3 * row[f'{name}_step_s']:.2f} | {1e3 * row[f'{name}_sample_s']:.1f} | "
                f"{row[f'{name}_peak_mb']:.2f} | {row[f'{name}_peak_rss_mb']:.2f} |"
            )
        for suffix in ("", "_invert"):
            if f"ratio_step{suffix}" in row:
                print(
                    f"| {model} | ratio minflow{suffix} / torch | {row[f'ratio_step{suffix}']:.2f} | "
                    f"{row[f'ratio_sample{suffix}']:.2f} | {row[f'ratio_peak_mb{suffix}']:.3f} | "
                    f"{row[f'ratio_peak_rss_mb{suffix}']:.3f} |"
                )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=MODELS, help="one model (default: all)")
    parser.add_argument("--only", choices=("minflow", "torch"), help="time one framework alone")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    parser.add_argument("--repeats", type=int, help="timed steps per implementation (default: r2, p2 200; d8 40)")
    parser.add_argument("--sample-repeats", type=int, default=5, help="timed sampling calls (default 5)")
    parser.add_argument("--sample-n", type=int, help="points per sampling call (default: 10^4; 10^3 images for d8)")
    parser.add_argument("--memory-steps", type=int, default=3, help="steps in the memory subprocess (default 3)")
    parser.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's default malloc thresholds")
    parser.add_argument("--json", help="write the results as JSON here")
    parser.add_argument("--memory-probe", nargs=3, metavar=("MODEL", "IMPL", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    set_backend("numpy")  # a CPU comparison (tracemalloc, PyTorch on the CPU), whatever MINFLOW_BACKEND says
    if args.memory_probe:
        model, implementation, n_steps = args.memory_probe
        print(json.dumps(memory_probe(model, implementation, int(n_steps))))
        return None
    tuned = False if args.no_malloc_tuning else keep_freed_memory()
    models = [args.model] if args.model else list(MODELS)
    machine = machine_description()
    load_before = load_average()
    print(f"minflow {minflow.__version__} on {machine}")
    print(f"load average before: {load_before}; malloc tuning {'on' if tuned else 'off'}")
    results = run(models, args.only, args.warmup, args.repeats, args.sample_repeats, args.memory_steps, args.sample_n)
    load_after = load_average()
    print_table(results)
    print(f"load average after: {load_after}")
    if args.json:
        report = {
            "machine": machine,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "malloc_tuning": tuned,
            "environment": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
            "results": results,
        }
        write_json(args.json, report)
    return results


if __name__ == "__main__":
    main()
