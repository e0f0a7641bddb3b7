"""Where the milliseconds of minflow's R2, P2, D8 and TarFlow training steps and R2 and D8 sampling go, on one BLAS thread.

    python benchmarks/profile_steps.py [--case r2|p2|d8|r2_sample|d8_sample|tarflow] [--steps N] [--cprofile]

For each case it prints one table of exclusive wall time per call of the
case (a training step: forward + backward + Adam; r2_sample: 10^4 points;
d8_sample: 1,000 images; tarflow: the 2x2-patch ``tarflow_digits`` on 64
digits in float32, as benchmarks/tarflow_speed.py),
one row per kind of work:

- one row per layer or network module class and pass (``Conv2d.backward``,
  ``ImageAffineCoupling.forward``, ...): the time inside that method minus
  the time of the modules it calls, i.e. its own array operations and
  Python. Found by wrapping the methods of every module of the model with a
  timer (the wrapper costs about a microsecond a call, so the rows of a
  model with many small calls, P2 above all, read slightly high);
- ``Conv2d`` splits into ``im2col`` (the strided gather, one copy) and the
  rest (the matrix products, which are BLAS, plus the bias add and dy's sum);
- ``Adam.step`` is the optimizer; ``other`` is what the step does outside
  every module (base density, loss, model checks, drawing the base noise).

Runs on one BLAS thread, with glibc's malloc keeping freed memory (as
``compare.py``). Below the table: the same call with a batch of one (images or points), an
upper bound on the fixed, per-call cost (Python, NumPy's dispatch, small
arrays), which a larger batch does not grow; and, with ``--cprofile``, the
20 functions of largest own time under cProfile (Python functions only:
NumPy's ufuncs and operators are counted in their callers).
"""

import argparse
import collections
import cProfile
import os
import pstats
import statistics
import sys
import time

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from threadpoolctl import threadpool_limits

from minflow.backend import make_rng
from minflow.commands.digits import keep_freed_memory
from minflow.data.digits import N_LEVELS, load_digits
from minflow.data.energy import get_energy
from minflow.data.toy2d import get_toy
from minflow.flows.preprocessing import dequantize
from minflow.nn import conv2d
from minflow.nn.module import Module
from minflow.optim import Adam
from minflow.zoo import realnvp_2d, tarflow_digits
from minflow.zoo.d8 import d8
from minflow.zoo.p2 import planar_2d

CASES = ("r2", "p2", "d8", "r2_sample", "d8_sample", "tarflow")
PASSES = ("forward", "backward", "inverse", "inverse_backward")
DEFAULT_STEPS = {"r2": 200, "p2": 200, "d8": 20, "r2_sample": 20, "d8_sample": 5, "tarflow": 30}


def build(case, batch=None):
    """(model, optimizer or None, call()) of one case; call() is one timed unit of work."""
    if case == "r2":
        model = realnvp_2d(seed=0)
        optimizer = Adam(model.params, model.grads, lr=1e-3)
        toy, rng, n = get_toy("gaussians8"), make_rng(1), batch or 512
        batches = [toy.sample(n, rng) for _ in range(8)]

        def call(i):
            model.zero_grads()
            model.nll_and_backward(batches[i % len(batches)])
            optimizer.step()

        return model, optimizer, call
    if case == "r2_sample":
        model, rng, n = realnvp_2d(seed=0), make_rng(2), batch or 10_000

        def call(i):
            model.sample(n, rng)

        return model, None, call
    if case == "p2":
        model = planar_2d(32, seed=0)
        optimizer = Adam(model.params, model.grads, lr=5e-3)
        target, rng, n = get_energy("U1"), make_rng(1), batch or 256

        def call(i):
            model.zero_grads()
            model.reverse_kl_and_backward(target, n, rng)
            optimizer.step()

        return model, optimizer, call
    if case == "tarflow":
        model = tarflow_digits()
        optimizer = Adam(model.params, model.grads, lr=1e-3)
        images, rng, n = load_digits("train"), numpy.random.default_rng(0), batch or 64
        batches = [
            dequantize(images[rng.choice(len(images), n, replace=False)], N_LEVELS, rng, numpy.float32)[0]
            for _ in range(4)
        ]

        def call(i):
            model.zero_grads()
            model.nll_and_backward(batches[i % len(batches)])
            optimizer.step()

        return model, optimizer, call
    model = d8(seed=0)
    if case == "d8":
        optimizer = Adam(model.params, model.grads, lr=1e-3, weight_decay=5e-5)
        images, rng, n = load_digits("train"), numpy.random.default_rng(0), batch or 64
        batches = [dequantize(images[rng.choice(len(images), n, replace=False)], N_LEVELS, rng)[0] for _ in range(4)]

        def call(i):
            model.zero_grads()
            model.nll_and_backward(batches[i % len(batches)])
            optimizer.step()

        return model, optimizer, call
    rng, n = make_rng(2), batch or 1000

    def call(i):
        model.sample(n, rng)

    return model, None, call


class Timers:
    """Exclusive wall time per label, from nested start/stop around wrapped methods."""

    def __init__(self):
        self.total = collections.defaultdict(float)
        self.calls = collections.Counter()
        self.stack = []  # [label, start, time spent in children]

    def wrap(self, label, fn):
        def timed(*args, **kwargs):
            self.stack.append([label, time.perf_counter(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                name, start, children = self.stack.pop()
                spent = time.perf_counter() - start
                self.total[name] += spent - children
                self.calls[name] += 1
                if self.stack:
                    self.stack[-1][2] += spent

        return timed


def instrument(model, optimizer, timers):
    """Wrap every pass of every module of the model, im2col and Adam.step (instance attributes, undone by del)."""
    seen = set()
    for module in model.modules():
        if id(module) in seen or not isinstance(module, Module):
            continue
        seen.add(id(module))
        for name in PASSES:
            if hasattr(module, name):
                setattr(module, name, timers.wrap(f"{type(module).__name__}.{name}", getattr(module, name)))
    conv2d.im2col = timers.wrap("Conv2d: im2col gather (copy)", conv2d._unwrapped_im2col)
    if optimizer is not None:
        optimizer.step = timers.wrap("Adam.step", optimizer.step)


def profile(case, n_steps, batch=None):
    """{label: ms per call}, plus the plain wall time per call (ms), median of calls, without wrappers."""
    model, optimizer, call = build(case, batch)
    for i in range(3):
        call(i)  # warm-up
    plain = []
    for i in range(n_steps):
        start = time.perf_counter()
        call(i)
        plain.append(time.perf_counter() - start)
    timers = Timers()
    instrument(model, optimizer, timers)
    start = time.perf_counter()
    for i in range(n_steps):
        call(i)
    wall = time.perf_counter() - start
    conv2d.im2col = conv2d._unwrapped_im2col
    per_call = {label: 1e3 * t / n_steps for label, t in timers.total.items()}
    per_call["other (outside every module)"] = 1e3 * wall / n_steps - sum(per_call.values())
    return per_call, 1e3 * statistics.median(plain), model, call


def print_table(case, per_call, plain_ms):
    total = sum(per_call.values())
    print(f"\n## {case}: {plain_ms:.2f} ms per call without timers ({total:.2f} ms with them)\n")
    print("| where | ms per call | share |")
    print("|---|---:|---:|")
    for label, ms in sorted(per_call.items(), key=lambda kv: -kv[1]):
        print(f"| {label} | {ms:.3f} | {100 * ms / total:.1f}% |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=CASES, help="one case (default: all)")
    parser.add_argument(
        "--steps", type=int, help="calls per measurement (default: r2, p2 200; d8 20; r2_sample 20; d8_sample 5)"
    )
    parser.add_argument("--cprofile", action="store_true", help="also print cProfile's top 20 by own time")
    args = parser.parse_args(argv)
    conv2d._unwrapped_im2col = conv2d.im2col
    keep_freed_memory()  # as compare.py and the digits command: no page faults on every fresh array
    with threadpool_limits(limits=1, user_api="blas"):
        for case in [args.case] if args.case else CASES:
            n_steps = args.steps or DEFAULT_STEPS[case]
            per_call, plain_ms, _, _ = profile(case, n_steps)
            print_table(case, per_call, plain_ms)
            _, tiny_ms, _, _ = profile(case, n_steps, batch=1)
            print(f"\nthe same with a batch of one: {tiny_ms:.2f} ms per call (fixed per-call cost, upper bound)")
            if args.cprofile:
                _, _, _, call = profile(case, 1)
                profiler = cProfile.Profile()
                profiler.enable()
                for i in range(n_steps):
                    call(i)
                profiler.disable()
                print(f"\ncProfile, {n_steps} calls, top 20 by own time (seconds over all calls):")
                pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
