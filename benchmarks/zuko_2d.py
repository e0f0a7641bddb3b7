"""zuko's MAF, NSF or RealNVP on the 2D toys by R2's recipe: the reference column beside maf_2d, nsf_2d and nsf_ar_2d.

    python benchmarks/zuko_2d.py [--models MAF NSF RealNVP] [--datasets ...] [--seeds 0 1 2] [--json PATH]

Each model is built at minflow's zoo size (``MAF(2, transforms=8)``, 36,896
parameters; ``NSF(2, transforms=5)``, 8 bins, 36,710; ``RealNVP(2,
transforms=8)``, 35,344), its weights drawn by ``torch.manual_seed(seed)``,
and trained exactly as ``benchmarks/spline_2d.py quality`` trains minflow's:
batch 512 of fresh exact samples from the stream seeded by ``seed``, Adam
lr 1e-3, 5,000 steps, float32, one thread; then the test NLL minus the true
entropy on the same 10^5 held-out samples (``python -m minflow demo``'s).

zuko (https://github.com/probabilists/zuko, 1.6) is a benchmark-only
dependency like torch: ``pip install zuko==1.6.0``.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from spline_2d import gaps_over_seeds

from minflow.backend import make_rng
from minflow.commands import write_json

DATASETS = ("gaussians8", "checkerboard", "rings", "moons")
MODELS = ("MAF", "NSF", "RealNVP")


def build(name):
    import zuko

    if name == "MAF":
        return zuko.flows.MAF(2, transforms=8)
    if name == "NSF":
        return zuko.flows.NSF(2, transforms=5, bins=8)
    return zuko.flows.RealNVP(2, transforms=8)


def gap(name, toy, seed, steps, test):
    import torch

    torch.manual_seed(seed)
    flow = build(name)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)
    rng = make_rng(seed)
    for _ in range(steps):
        x = torch.from_numpy(toy.sample(512, rng).astype("float32"))
        loss = -flow().log_prob(x).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        log_prob = flow().log_prob(torch.from_numpy(test.astype("float32")))
    return -float(log_prob.double().mean()) - toy.entropy


def main(argv=None):
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["MAF"])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--test-samples", type=int, default=100_000)
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    def train_gap(name, toy, seed, test):
        return gap(name, toy, seed, args.steps, test)

    results = gaps_over_seeds(args.datasets, args.models, args.seeds, args.test_samples, train_gap, label="zuko ")
    if args.json:
        write_json(args.json, {"what": "zuko", "steps": args.steps, "results": results})
    return results


if __name__ == "__main__":
    main()
