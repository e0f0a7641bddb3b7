"""Reverse KL of spline IAFs of several sizes on the energies U1..U4, with P2's recipe (``zoo.iaf_2d``).

    python benchmarks/iaf_energy_sweep.py --layers 2 --hidden 32 32 --bins 8 --bound 5 --orders natural reversed --json PATH

Each run is what ``python -m minflow energy --flow iaf`` does for the default
model, for ``iaf_2d(n_layers, hidden, n_bins, bound, orders=orders)``: 10,000 steps of batch 256,
Adam 5e-3, fresh base noise each step (seeded by the seed), then KL(q || p)
in float64 on 10^5 samples (noise seed + 10,000). The JSON lists every run
and, per target, the mean over the seeds.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minflow.commands import write_json
from minflow.data.energy import ENERGY_TARGETS, get_energy, reverse_kl
from minflow.zoo import iaf_2d
from minflow.zoo.p2 import P2_RECIPE, fit_reverse_kl
from minflow.zoo.spline_2d import SPLINE_BOUND


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 32])
    parser.add_argument("--bins", type=int, default=8)
    parser.add_argument("--bound", type=float, default=SPLINE_BOUND, help="spline bound B: each spline maps [-B, B]")
    parser.add_argument("--orders", nargs="+", default=["natural", "reversed"], help="MADE orders, in turn")
    parser.add_argument("--targets", nargs="+", choices=ENERGY_TARGETS, default=list(ENERGY_TARGETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=P2_RECIPE["n_steps"])
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)
    config = {
        "n_layers": args.layers,
        "hidden": tuple(args.hidden),
        "n_bins": args.bins,
        "bound": args.bound,
        "orders": tuple(args.orders),
    }
    runs = []
    for target in args.targets:
        energy = get_energy(target)
        for seed in args.seeds:
            model = iaf_2d(**config, seed=seed)
            start = time.perf_counter()
            fit_reverse_kl(model, energy, n_steps=args.steps, seed=seed, progress=False)
            seconds = time.perf_counter() - start
            kl, stderr = reverse_kl(model, energy, n_samples=10**5, seed=seed + 10_000)
            runs.append({"target": target, "seed": seed, "kl": kl, "kl_stderr": stderr, "seconds": seconds})
            print(f"{target} seed {seed}: KL {kl:.4f} +- {stderr:.4f} ({seconds:.0f} s)", flush=True)
    means = {t: statistics.mean(r["kl"] for r in runs if r["target"] == t) for t in args.targets}
    out = {
        "command": "python benchmarks/iaf_energy_sweep.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "config": {**config, "parameters": iaf_2d(**config).num_params()},
        "recipe": {"steps": args.steps, "batch_size": P2_RECIPE["batch_size"], "lr": P2_RECIPE["lr"]},
        "mean_kl": means,
        "runs": runs,
    }
    print({t: round(m, 4) for t, m in means.items()})
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
