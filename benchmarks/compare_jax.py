"""minflow against JAX (jit) and PyTorch on the reference models R2, P2 and D8, side by side, on one thread each.

    python benchmarks/compare_jax.py [--model r2|p2|d8] [--no-torch] [--baseline DIR] [--json PATH]

The minflow and PyTorch cases are those of ``compare.py``; the JAX twins
are in ``jax_models.py``, built from the weights of the same minflow model
(seed 0), with a ``jax.jit``-compiled training step (forward, gradient and
optax Adam with the hyperparameters of reference-problems.md section 3) and
a jitted sampler. For each model it reports the median seconds per training
step and per sampling call (10^4 points for r2 and p2, 10^3 images for d8),
timed interleaved (one call of each implementation in turn, after warm-up,
so that a busy neighbour slows all alike; in a random order each round,
so that none always follows the same one), and the ratios minflow / JAX and
minflow / PyTorch as the median of the per-round ratios, of wall time and
of CPU time (the process's CPU seconds per call, all its threads: on a
machine loaded by other work a call waits for a core, which inflates its
wall time but not its CPU time).

``--baseline DIR`` times a second copy of minflow beside the first in the
same rounds (DIR holds a package ``minflow_before``: the ``minflow/``
folder of an earlier commit, copied and renamed; its imports are all
relative), giving before/after ratios under the same load:

    git archive <commit> minflow | tar -x -C /tmp/base && mv /tmp/base/minflow /tmp/base/minflow_before

Threads: one for each framework, set before any library starts its pools:
OpenBLAS (minflow) through threadpoolctl, XLA through
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``
(set here unless XLA_FLAGS is already set), PyTorch through
``torch.set_num_threads(1)``. The CPU seconds of each call are recorded
beside the wall seconds: CPU / wall near 1 confirms one busy thread.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse
import importlib
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import compare
import jax
import jax_models as jm
from threadpoolctl import threadpool_limits

import minflow
from minflow.commands import write_json
from minflow.zoo import realnvp_2d
from minflow.zoo.d8 import d8
from minflow.zoo.p2 import planar_2d

MODELS = ("r2", "p2", "d8")
SAMPLE_SIZES = {"r2": 10_000, "p2": 10_000, "d8": 1_000}
DEFAULT_REPEATS = {"r2": 200, "p2": 200, "d8": 30}
BATCH = compare.BATCH
IMPLEMENTATIONS = ("minflow", "minflow_before", "jax", "torch")
OTHERS = IMPLEMENTATIONS[1:]  # what minflow's ratios are taken against


# -- the JAX cases: (make_batch, step, sample), as compare.CASES --------------------------


def _jax_case(params, loss, lr, make_batch, sample_fn, weight_decay=0.0):
    step_fn, opt_state = jm.train_step(loss, params, lr, weight_decay)
    state = {"params": params, "opt_state": opt_state, "key": jax.random.PRNGKey(2)}
    samplers = {}

    def step(batch):
        state["params"], state["opt_state"], value = step_fn(state["params"], state["opt_state"], batch)
        value.block_until_ready()

    def sample(n):
        if n not in samplers:
            samplers[n] = jm.sampler(sample_fn, n)
        state["key"], key = jax.random.split(state["key"])
        return samplers[n](state["params"], key).block_until_ready()

    return make_batch, step, sample


def jax_r2():
    params = jm.params_from_minflow("r2", realnvp_2d(seed=0))

    def loss(p, x):
        return -jm.r2_log_prob(p, x).mean()

    return _jax_case(params, loss, 1e-3, compare._gaussians8_batches(BATCH["r2"], jax.numpy.asarray), jm.r2_sample)


def jax_p2():
    params = jm.params_from_minflow("p2", planar_2d(compare.P2_LAYERS, seed=0))
    energy = jm.jax_energy(compare.P2_TARGET)
    keys = {"key": jax.random.PRNGKey(1)}

    def make_batch():  # a fresh key per step, split outside the timer; the noise is drawn inside the step
        keys["key"], key = jax.random.split(keys["key"])
        return key

    def loss(p, key):
        z = jax.random.normal(key, (BATCH["p2"], 2), dtype=p["u"].dtype)
        x, log_q = jm.p2_sample_and_log_q(p, z)
        return (log_q + energy(x)).mean()

    def sample(p, key, n):
        return jm.p2_sample_and_log_q(p, jax.random.normal(key, (n, 2), dtype=p["u"].dtype))[0]

    return _jax_case(params, loss, 5e-3, make_batch, sample)


def jax_d8():
    params = jm.params_from_minflow("d8", d8(seed=0))

    def loss(p, v):
        return -jm.d8_log_prob(p, v).mean()

    batches = compare._digit_batches(BATCH["d8"], jax.numpy.asarray)
    return _jax_case(params, loss, 1e-3, batches, jm.d8_sample, weight_decay=5e-5)


def minflow_case(pkg, model):
    """compare.py's minflow case of ``model`` built from the package ``pkg`` (minflow or a baseline copy)."""
    zoo, optim = importlib.import_module(f"{pkg}.zoo"), importlib.import_module(f"{pkg}.optim")
    if model == "r2":
        net = zoo.realnvp_2d(seed=0)
        optimizer = optim.Adam(net.params, net.grads, lr=1e-3)
        batches = compare._gaussians8_batches(BATCH["r2"])
    elif model == "d8":
        net = importlib.import_module(f"{pkg}.zoo.d8").d8(seed=0)
        optimizer = optim.Adam(net.params, net.grads, lr=1e-3, weight_decay=5e-5)
        batches = compare._digit_batches(BATCH["d8"])
    else:
        net = importlib.import_module(f"{pkg}.zoo.p2").planar_2d(compare.P2_LAYERS, seed=0)
        optimizer = optim.Adam(net.params, net.grads, lr=5e-3)
        target = importlib.import_module(f"{pkg}.data.energy").get_energy(compare.P2_TARGET)
        rng = compare.make_rng(1)

        def step(_):
            net.zero_grads()
            net.reverse_kl_and_backward(target, BATCH["p2"], rng)  # draws its own base noise
            optimizer.step()

        return lambda: None, step, lambda n: net.sample(n, compare.make_rng(2))
    return batches, compare._minflow_nll_step(net, optimizer), lambda n: net.sample(n, compare.make_rng(2))


def torch_case(model):
    import torch

    torch.set_num_threads(1)
    return compare.CASES[(model, "torch")]()


def cases_for(model, with_torch, with_baseline):
    cases = {"minflow": minflow_case("minflow", model)}
    if with_baseline:
        cases["minflow_before"] = minflow_case("minflow_before", model)
    cases["jax"] = {"r2": jax_r2, "p2": jax_p2, "d8": jax_d8}[model]()
    if with_torch:
        cases["torch"] = torch_case(model)
    return cases


# -- timing ------------------------------------------------------------------------------


def timed(fn, *args):
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def _shuffled(names, rng):
    """``names`` in a fresh random order: round after round, each runs after each of the others alike."""
    order = list(names)
    rng.shuffle(order)
    return order


def interleaved(cases, n_warmup, n_repeats, sample_n, n_sample_repeats):
    """{name: {"step": [(wall, cpu)], "sample": [(wall, cpu)]}}, one entry per timed round."""
    times = {name: {"step": [], "sample": []} for name in cases}
    names, rng = list(cases), random.Random(0)
    for i in range(n_warmup + n_repeats):
        # a random order each round, so that no implementation always runs right after the same one (on this
        # 2-core machine minflow's P2 step ran about 10% slower right after JAX's or PyTorch's than after its own)
        for name in _shuffled(names, rng):
            make_batch, step, _ = cases[name]
            batch = make_batch()  # outside the timer
            t = timed(step, batch)
            if i >= n_warmup:
                times[name]["step"].append(t)
    for i in range(2 + n_sample_repeats):
        for name in _shuffled(names, rng):
            t = timed(cases[name][2], sample_n)
            if i >= 2:  # the first two draws are warm-up (and JAX's compilation)
                times[name]["sample"].append(t)
    return times


def summarise(times):
    row = {}
    for name, kinds in times.items():
        for kind, pairs in kinds.items():
            wall = [w for w, _ in pairs]
            row[f"{name}_{kind}_s"] = statistics.median(wall)
            row[f"{name}_{kind}_cpu_s"] = statistics.median(c for _, c in pairs)
            row[f"{name}_{kind}_cpu_per_wall"] = sum(c for _, c in pairs) / sum(wall)
    for other in OTHERS:
        if other not in times:
            continue
        for kind in ("step", "sample"):
            ratios = [a[0] / b[0] for a, b in zip(times["minflow"][kind], times[other][kind])]
            row[f"ratio_{kind}_{other}"] = statistics.median(ratios)
            ratios = [a[1] / max(b[1], 1e-9) for a, b in zip(times["minflow"][kind], times[other][kind])]
            row[f"ratio_{kind}_{other}_cpu"] = statistics.median(ratios)
    return row


def run(models, with_torch, with_baseline, n_warmup, n_repeats, n_sample_repeats, sample_n=None):
    results = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for model in models:
            cases = cases_for(model, with_torch, with_baseline)
            repeats = n_repeats or DEFAULT_REPEATS[model]
            n_points = sample_n or SAMPLE_SIZES[model]
            times = interleaved(cases, n_warmup, repeats, n_points, n_sample_repeats)
            results[model] = {"batch": BATCH[model], "sample_n": n_points, "repeats": repeats, **summarise(times)}
    return results


def print_table(results):
    print("| model | implementation | step ms | sample ms | step CPU ms | sample CPU ms | CPU/wall (step) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for model, row in results.items():
        for name in IMPLEMENTATIONS:
            if f"{name}_step_s" in row:
                print(
                    f"| {model} | {name} | {1e3 * row[f'{name}_step_s']:.2f} | {1e3 * row[f'{name}_sample_s']:.1f} | "
                    f"{1e3 * row[f'{name}_step_cpu_s']:.2f} | {1e3 * row[f'{name}_sample_cpu_s']:.1f} | "
                    f"{row[f'{name}_step_cpu_per_wall']:.2f} |"
                )
        for other in OTHERS:
            if f"ratio_step_{other}" in row:
                print(
                    f"| {model} | ratio minflow / {other} | {row[f'ratio_step_{other}']:.2f} | "
                    f"{row[f'ratio_sample_{other}']:.2f} | {row[f'ratio_step_{other}_cpu']:.2f} | "
                    f"{row[f'ratio_sample_{other}_cpu']:.2f} | |"
                )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=MODELS, help="one model (default: all)")
    parser.add_argument("--no-torch", action="store_true", help="minflow and JAX only")
    parser.add_argument("--baseline", help="a folder holding minflow_before, timed beside minflow (see above)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds first (default 10)")
    parser.add_argument("--repeats", type=int, help="timed rounds (default: r2, p2 200; d8 30)")
    parser.add_argument("--sample-repeats", type=int, default=7, help="timed sampling rounds (default 7)")
    parser.add_argument("--sample-n", type=int, help="points per sampling call (default: 10^4; 10^3 images for d8)")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)
    compare.keep_freed_memory()
    if args.baseline:
        sys.path.insert(0, os.path.abspath(args.baseline))
    models = [args.model] if args.model else list(MODELS)
    with threadpool_limits(limits=1, user_api="blas"):
        machine = compare.machine_description()
    load_before = compare.load_average()
    print(f"minflow {minflow.__version__}, JAX {jax.__version__} on {machine}")
    print(f"XLA_FLAGS={os.environ['XLA_FLAGS']}; load average before: {load_before}")
    with_torch, with_baseline = not args.no_torch, bool(args.baseline)
    results = run(models, with_torch, with_baseline, args.warmup, args.repeats, args.sample_repeats, args.sample_n)
    load_after = compare.load_average()
    print_table(results)
    print(f"load average after: {load_after}")
    if args.json:
        report = {
            "machine": machine,
            "jax": jax.__version__,
            "threads": {"minflow_blas": 1, "xla_flags": os.environ["XLA_FLAGS"], "torch": 1 if with_torch else None},
            "baseline": args.baseline,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "results": results,
        }
        write_json(args.json, report)
    return results


if __name__ == "__main__":
    main()
