"""minflow of this tree against an earlier copy of itself, interleaved, alternating which runs first.

    git archive REF minflow | tar -x -C DIR && mv DIR/minflow DIR/minflow_before
    OMP_NUM_THREADS=1 python benchmarks/before_after.py --baseline DIR [--cases r2 r2_sample ...] [--json PATH]

The same cases as ``profile_steps.py`` (a training step: forward + backward
+ Adam; r2_sample and p2_sample: 10^4 points; d8_sample: 1,000 images;
tarflow: the 2x2-patch ``tarflow_digits`` on 64 digits in float32), built
from ``minflow`` and from the copy ``minflow_before`` with the same seeds and
batches. Each round runs both once, the copy first in even rounds and second
in odd ones, so that neither always follows the other (on a busy machine the
first call of a round can find a neighbour's threads still running). Reports
the median of the per-round ratios this tree / the copy, wall time, on one
BLAS thread with glibc keeping freed memory (as ``compare.py``).
"""

import argparse
import importlib
import os
import statistics
import sys
import time

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import compare
from threadpoolctl import threadpool_limits

from minflow.commands import write_json

ROUNDS = {"r2": 200, "p2": 200, "d8": 30, "tarflow": 40, "r2_sample": 30, "p2_sample": 30, "d8_sample": 6}


def build(pkg, case):
    """call(i): one timed unit of work of ``case`` with the package ``pkg`` (minflow or minflow_before)."""
    zoo, optim = importlib.import_module(f"{pkg}.zoo"), importlib.import_module(f"{pkg}.optim")
    model_name = case.split("_")[0]
    if model_name == "p2":
        model = importlib.import_module(f"{pkg}.zoo.p2").planar_2d(compare.P2_LAYERS, seed=0)
        target, rng = importlib.import_module(f"{pkg}.data.energy").get_energy(compare.P2_TARGET), compare.make_rng(1)
        optimizer = optim.Adam(model.params, model.grads, lr=5e-3)

        def step(_):
            model.zero_grads()
            model.reverse_kl_and_backward(target, 256, rng)
            optimizer.step()

    else:
        if model_name == "r2":
            model, batch = zoo.realnvp_2d(seed=0), compare._gaussians8_batches(512)
        elif model_name == "d8":
            model, batch = importlib.import_module(f"{pkg}.zoo.d8").d8(seed=0), compare._digit_batches(64)
        else:
            model, batch = zoo.tarflow_digits(), compare._digit_batches(64, lambda v: v.astype(numpy.float32))
        optimizer = optim.Adam(model.params, model.grads, lr=1e-3)
        batches = [batch() for _ in range(4)]
        train = compare._minflow_nll_step(model, optimizer)

        def step(i):
            train(batches[i % len(batches)])

    if case.endswith("_sample"):
        n = 1000 if model_name == "d8" else 10_000
        return lambda i: model.sample(n, compare.make_rng(2))
    return step


def before_after(case, rounds):
    """{"before_s", "after_s": median seconds per call, "ratio": median of per-round ratios after / before}."""
    calls = {"before": build("minflow_before", case), "after": build("minflow", case)}
    times = {"before": [], "after": []}
    for i in range(rounds + 2):
        for name in ("before", "after") if i % 2 == 0 else ("after", "before"):
            start = time.perf_counter()
            calls[name](i)
            if i >= 2:  # two warm-up rounds
                times[name].append(time.perf_counter() - start)
    ratios = [a / b for a, b in zip(times["after"], times["before"])]
    return {
        "rounds": rounds,
        "before_s": statistics.median(times["before"]),
        "after_s": statistics.median(times["after"]),
        "ratio": statistics.median(ratios),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="a folder holding minflow_before (see above)")
    parser.add_argument("--cases", nargs="+", choices=list(ROUNDS), default=list(ROUNDS))
    parser.add_argument("--rounds", type=int, help="timed rounds per case (default: r2, p2 200; d8 30; ...)")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.abspath(args.baseline))
    compare.keep_freed_memory()
    results = {"load_average_before": compare.load_average()}
    with threadpool_limits(limits=1, user_api="blas"):
        for case in args.cases:
            results[case] = before_after(case, args.rounds or ROUNDS[case])
            row = results[case]
            print(
                f"{case}: before {1e3 * row['before_s']:.2f} ms, after {1e3 * row['after_s']:.2f} ms, "
                f"after / before {row['ratio']:.3f}",
                flush=True,
            )
    results["load_average_after"] = compare.load_average()
    print(f"load average before {results['load_average_before']}, after {results['load_average_after']}")
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
