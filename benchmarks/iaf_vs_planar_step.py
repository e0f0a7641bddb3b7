"""Step time of reverse KL: the spline IAF (``zoo.iaf_2d``) against planar K=32 (P2), timed interleaved.

    python benchmarks/iaf_vs_planar_step.py [--pairs 200] [--json PATH]

One step is ``model.reverse_kl_and_backward`` on a batch of 256 base samples
(P2's recipe) plus an Adam update, on target U1. The two models take turns,
one step each, so a busy machine slows both alike; the ratio is the median of
the per-pair ratios.
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)
    target = get_energy("U1")
    runs = {}
    for name, model in (("iaf_2d", iaf_2d()), ("planar_32", planar_2d(32))):
        optimizer = Adam(model.params, model.grads, lr=5e-3)
        runs[name] = (model, optimizer, make_rng(0), [])
    for i in range(args.pairs + 10):
        for model, optimizer, rng, times in runs.values():
            start = time.perf_counter()
            model.zero_grads()
            model.reverse_kl_and_backward(target, 256, rng)
            optimizer.step()
            if i >= 10:  # warm-up
                times.append(time.perf_counter() - start)
    iaf, planar = runs["iaf_2d"][3], runs["planar_32"][3]
    out = {
        "iaf_2d_ms": 1e3 * statistics.median(iaf),
        "planar_32_ms": 1e3 * statistics.median(planar),
        "ratio": statistics.median(a / b for a, b in zip(iaf, planar)),
        "pairs": args.pairs,
    }
    print({k: round(v, 3) for k, v in out.items()})
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
