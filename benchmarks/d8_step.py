"""D8 training step: minflow against PyTorch, side by side, in one run.

    OMP_NUM_THREADS=2 python benchmarks/d8_step.py [--steps 30] [--only minflow] [--json PATH]

Reports, for the D8 model of reference-problems.md (384,962 parameters,
batch 64 of dequantised 8x8 digits, Adam lr 1e-3 with coupled L2 5e-5):

- median seconds per training step (forward + backward + Adam update;
  drawing the batch and its noise is outside the timer), after warm-up,
  timed interleaved (one minflow step, one PyTorch step, ...) so that a busy
  neighbour slows both alike; the ratio is the median of per-pair ratios;
- minflow's peak memory of one step by ``tracemalloc`` (NumPy reports its
  array allocations to it; PyTorch's allocator does not, so it has no
  tracemalloc figure);
- the convolution alone: forward and forward + backward of one 3x3,
  32 -> 32 channel convolution at N = 64 on 8x8 and 4x4 images.

PyTorch runs with as many threads as NumPy's BLAS (``OMP_NUM_THREADS``,
default 2 here). The PyTorch model below is the same architecture,
initialisation and recipe; it is written for this benchmark only.
``--no-malloc-tuning`` leaves glibc's defaults (``commands.digits.keep_freed_memory``).
"""

import argparse
import json
import math
import os
import statistics
import sys
import time
import tracemalloc

os.environ.setdefault("OMP_NUM_THREADS", "2")  # before NumPy loads its BLAS

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minflow.commands.digits import keep_freed_memory
from minflow.data.digits import N_LEVELS, load_digits
from minflow.flows.preprocessing import dequantize
from minflow.nn.conv2d import Conv2d
from minflow.optim import Adam
from minflow.zoo.d8 import d8

BATCH = 64


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return torch


def torch_d8(torch, hidden=32, n_blocks=2, alpha=0.05):
    """D8 in PyTorch: logit, 3 checkerboard couplings, squeeze, 3 channel couplings, factor out, 4 checkerboard."""
    nn = torch.nn

    class ResNet(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv_in = nn.Conv2d(c_in, hidden, 3, padding=1)  # PyTorch's default init: U(+-1/sqrt(fan_in))
            self.blocks = nn.ModuleList(
                nn.Sequential(
                    nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1)
                )
                for _ in range(n_blocks)
            )
            self.conv_out = nn.Conv2d(hidden, c_out, 3, padding=1)
            nn.init.zeros_(self.conv_out.weight)
            nn.init.zeros_(self.conv_out.bias)

        def forward(self, x):
            h = self.conv_in(x)
            for block in self.blocks:
                h = h + block(h)
            return self.conv_out(torch.relu(h))

    class Checkerboard(nn.Module):
        def __init__(self, c, size, parity):
            super().__init__()
            i, j = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
            self.register_buffer("copied", (((i + j) % 2) == parity).float()[None, None])
            self.c, self.net = c, ResNet(c, 2 * c)

        def forward(self, x):
            h = self.net(x * self.copied)
            free = 1 - self.copied
            s = torch.tanh(h[:, : self.c]) * free
            return x * torch.exp(s) + h[:, self.c :] * free, s.sum(dim=(1, 2, 3))

    class Channel(nn.Module):
        def __init__(self, first):
            super().__init__()
            self.first, self.net = first, ResNet(2, 4)

        def forward(self, x):
            a, b = (x[:, :2], x[:, 2:]) if self.first else (x[:, 2:], x[:, :2])
            h = self.net(a)
            s = torch.tanh(h[:, :2])
            b = b * torch.exp(s) + h[:, 2:]
            return (torch.cat([a, b], 1) if self.first else torch.cat([b, a], 1)), s.sum(dim=(1, 2, 3))

    class D8(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.ModuleList(Checkerboard(1, 8, q) for q in (0, 1, 0))
            self.middle = nn.ModuleList(Channel(f) for f in (True, False, True))
            self.last = nn.ModuleList(Checkerboard(2, 4, q) for q in (0, 1, 0, 1))

        def log_prob(self, v):
            p = alpha + (1 - 2 * alpha) * v
            x = torch.log(p) - torch.log1p(-p)
            logdet = (math.log(1 - 2 * alpha) - torch.log(p) - torch.log1p(-p)).sum(dim=(1, 2, 3))
            for layer in self.first:
                x, ld = layer(x)
                logdet = logdet + ld
            n = x.shape[0]
            x = x.reshape(n, 1, 4, 2, 4, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, 4, 4, 4)  # squeeze
            for layer in self.middle:
                x, ld = layer(x)
                logdet = logdet + ld
            kept, factored = x[:, :2], x[:, 2:]
            for layer in self.last:
                kept, ld = layer(kept)
                logdet = logdet + ld
            z = torch.cat([kept, factored], 1)
            return -0.5 * (z * z).sum(dim=(1, 2, 3)) - 32 * math.log(2 * math.pi) + logdet

    return D8()


def minflow_case():
    model = d8(seed=0)
    optimizer = Adam(model.params, model.grads, lr=1e-3, weight_decay=5e-5)

    def step(v):
        model.zero_grads()
        model.nll_and_backward(v)
        optimizer.step()

    return model, step


def torch_case(torch):
    torch.manual_seed(0)
    model = torch_d8(torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-5)

    def step(v):
        optimizer.zero_grad(set_to_none=False)
        loss = -model.log_prob(torch.from_numpy(v)).mean()
        loss.backward()
        optimizer.step()

    return model, step


def _timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def benchmark_steps(cases, n_steps, n_warmup=3):
    """Median seconds per step of each case, interleaved; batches drawn outside the timer."""
    images = load_digits("train")
    rng = numpy.random.default_rng(0)
    times = {name: [] for name in cases}
    for i in range(n_warmup + n_steps):
        idx = rng.choice(len(images), BATCH, replace=False)
        v, _ = dequantize(images[idx], N_LEVELS, rng)
        for name, step in cases.items():
            t = _timed(step, v)
            if i >= n_warmup:
                times[name].append(t)
    return times


def peak_tracemalloc_mb(step):
    """Peak traced memory (MB) of one step of a warm model, by tracemalloc."""
    v, _ = dequantize(load_digits("train")[:BATCH], N_LEVELS, numpy.random.default_rng(0))
    step(v)
    tracemalloc.start()
    tracemalloc.reset_peak()
    step(v)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def benchmark_conv(torch, size, n_repeats=30):
    """Median ms of forward and forward + backward of a 3x3 32 -> 32 conv at N = 64 (minflow, PyTorch)."""
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((BATCH, 32, size, size)).astype(numpy.float32)
    dy = rng.standard_normal((BATCH, 32, size, size)).astype(numpy.float32)
    conv = Conv2d(32, 32, 3)
    out = {"minflow_forward": [], "minflow_forward_backward": []}

    def mf_fwd():
        conv.forward(x)

    def mf_both():
        conv.forward(x)
        conv.backward(dy)

    cases = [("minflow_forward", mf_fwd), ("minflow_forward_backward", mf_both)]
    if torch is not None:
        tconv = torch.nn.Conv2d(32, 32, 3, padding=1)
        tx = torch.from_numpy(x).requires_grad_(True)
        tdy = torch.from_numpy(dy)

        def t_fwd():
            with torch.no_grad():
                tconv(tx)

        def t_both():
            tconv(tx).backward(tdy)

        cases += [("torch_forward", t_fwd), ("torch_forward_backward", t_both)]
        out.update(torch_forward=[], torch_forward_backward=[])
    for i in range(n_repeats + 3):
        for name, fn in cases:
            t = _timed(fn)
            if i >= 3:
                out[name].append(t)
    return {name: 1e3 * statistics.median(ts) for name, ts in out.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per framework (default 30)")
    parser.add_argument("--only", choices=["minflow", "torch"], help="run one framework only")
    parser.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's default malloc thresholds")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    tuned = False if args.no_malloc_tuning else keep_freed_memory()
    torch = None if args.only == "minflow" else _torch()
    cases, models = {}, {}
    if args.only != "torch":
        models["minflow"], cases["minflow"] = minflow_case()
    if torch is not None:
        models["torch"], cases["torch"] = torch_case(torch)
    if not cases:
        parser.error("PyTorch is not installed; run without --only torch.")
    threads = os.environ["OMP_NUM_THREADS"]
    print(f"D8 training step, batch {BATCH}, {threads} thread(s), malloc tuning {'on' if tuned else 'off'}")
    if "minflow" in models:
        print(f"  minflow parameters: {models['minflow'].num_params():,}")
    if "torch" in models:
        print(f"  PyTorch {torch.__version__} parameters: {sum(p.numel() for p in models['torch'].parameters()):,}")

    times = benchmark_steps(cases, args.steps)
    results = {"threads": int(threads), "malloc_tuning": tuned, "steps": args.steps}
    for name, ts in times.items():
        results[f"{name}_seconds_per_step"] = statistics.median(ts)
        print(f"  {name:8s} median {statistics.median(ts):.4f} s/step (min {min(ts):.4f}, max {max(ts):.4f})")
    if len(times) == 2:
        ratio = statistics.median(a / b for a, b in zip(times["minflow"], times["torch"]))
        results["ratio_minflow_over_torch"] = ratio
        print(f"  minflow / PyTorch: {ratio:.2f} (median of per-pair ratios)")
    if "minflow" in cases:
        results["minflow_peak_tracemalloc_mb"] = peak_tracemalloc_mb(cases["minflow"])
        print(f"  minflow peak memory of one step (tracemalloc): {results['minflow_peak_tracemalloc_mb']:.1f} MB")
    for size in (8, 4):
        conv = benchmark_conv(torch, size)
        results[f"conv_{size}x{size}_ms"] = conv
        print(f"  conv 3x3 32->32, N=64, {size}x{size}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in conv.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
