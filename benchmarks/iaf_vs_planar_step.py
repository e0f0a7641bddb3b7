"""Step time of reverse KL: the spline IAF of the energy command (``zoo.iaf_2d(bound=IAF_BOUND)``) against planar K=32 (P2), timed interleaved.

    python benchmarks/iaf_vs_planar_step.py [--pairs 200] [--also 2:32x32:8:5 4:32x32:8] [--json PATH]

One step is ``model.reverse_kl_and_backward`` on a batch of 256 base samples
(P2's recipe) plus an Adam update, on target U1. The models take turns, one
step each, so a busy machine slows all alike; each ratio is the median of the
per-round ratios to planar's step. ``--also`` adds IAFs of other sizes to the
same rounds, each written layers:hidden:bins[:bound] (hidden widths joined
by "x"; the bound defaults to ``iaf_2d``'s).
On a loaded machine a step that loses the processor takes many times its
cost in wall time; beside the wall-time ratio each model reports
``ratio_cpu``, the same median of per-round ratios of the thread's CPU time
(``time.thread_time``), which waiting for the processor does not count, and
``ratio_q20``, the ratio of the 20th percentiles of the wall times.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minflow.backend import make_rng
from minflow.commands import write_json
from minflow.data.energy import get_energy
from minflow.optim import Adam
from minflow.zoo import iaf_2d, planar_2d
from minflow.zoo.spline_2d import IAF_BOUND


def iaf_config(text):
    """ "layers:hidden:bins[:bound]", e.g. "4:32x32:8" or "2:32x32:8:5" -> dict of ``iaf_2d`` arguments."""
    try:
        layers, hidden, bins, *bound = text.split(":")
        config = {"n_layers": int(layers), "hidden": tuple(int(h) for h in hidden.split("x")), "n_bins": int(bins)}
        if len(bound) > 1:
            raise ValueError
        return {**config, "bound": float(bound[0])} if bound else config
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected layers:hidden:bins[:bound] such as 4:32x32:8 or 2:32x32:8:5; got {text!r}"
        ) from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument(
        "--also", type=iaf_config, nargs="*", default=[], help="more IAF sizes, layers:hidden:bins[:bound]"
    )
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)
    target = get_energy("U1")
    models = {"planar_32": planar_2d(32), "iaf_2d": iaf_2d(bound=IAF_BOUND)}  # the energy command's IAF
    for config in args.also:
        name = "iaf_2d({n_layers}, {hidden}, {n_bins}".format(**config)
        models[name + (", bound={bound:g})".format(**config) if "bound" in config else ")")] = iaf_2d(**config)
    runs = {}
    for name, model in models.items():
        optimizer = Adam(model.params, model.grads, lr=5e-3)
        runs[name] = (model, optimizer, make_rng(0), [], [])
    for i in range(args.pairs + 10):
        for model, optimizer, rng, times, cpu_times in runs.values():
            start, cpu_start = time.perf_counter(), time.thread_time()
            model.zero_grads()
            model.reverse_kl_and_backward(target, 256, rng)
            optimizer.step()
            if i >= 10:  # warm-up
                times.append(time.perf_counter() - start)
                cpu_times.append(time.thread_time() - cpu_start)
    planar, planar_cpu = runs["planar_32"][3], runs["planar_32"][4]
    ratio = {name: statistics.median(a / b for a, b in zip(run[3], planar)) for name, run in runs.items()}
    ratio_cpu = {name: statistics.median(a / b for a, b in zip(run[4], planar_cpu)) for name, run in runs.items()}
    q20 = {name: statistics.quantiles(run[3], n=5)[0] for name, run in runs.items()}
    out = {
        "iaf_2d_ms": 1e3 * statistics.median(runs["iaf_2d"][3]),
        "planar_32_ms": 1e3 * statistics.median(planar),
        "ratio": ratio["iaf_2d"],
        "pairs": args.pairs,
        "models": {
            name: {
                "ms": 1e3 * statistics.median(run[3]),
                "ratio": ratio[name],
                "cpu_ms": 1e3 * statistics.median(run[4]),
                "ratio_cpu": ratio_cpu[name],
                "ratio_q20": q20[name] / q20["planar_32"],
                "parameters": run[0].num_params(),
            }
            for name, run in runs.items()
        },
    }
    for name, row in out["models"].items():
        print(
            f"{name:24s} {row['ms']:7.3f} ms {row['ratio']:.3f}x planar K=32 (CPU time {row['cpu_ms']:.3f} ms "
            f"{row['ratio_cpu']:.3f}x; q20 {row['ratio_q20']:.3f}x) {row['parameters']} parameters"
        )
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
