"""How much does the R2 result depend on the seed? minflow and PyTorch, same seeds.

    python benchmarks/r2_seeds.py --dataset gaussians8 --seeds 0 1 2 3 [--json PATH]

For each seed, trains R2 by the reference recipe (batch 512 of fresh exact
samples, Adam lr 1e-3, 5,000 steps) in minflow and in PyTorch, and reports
the test NLL minus the true entropy on the same 10^5 held-out samples that
``python -m minflow demo`` uses. Both frameworks draw the same training
batches for a seed (the data stream is seeded identically); their
initialisations come from their own generators. The spread over seeds
shows which differences between two single runs mean anything.
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minflow.backend import make_rng
from minflow.commands import write_json
from minflow.commands.demo import TEST_SEED
from minflow.data.toy2d import TOY_DENSITIES, get_toy
from minflow.train import fit_samples
from minflow.zoo import realnvp_2d


def minflow_gap(toy, seed, steps, test):
    model = realnvp_2d(seed=seed)
    fit_samples(model, toy.sample, steps, batch_size=512, lr=1e-3, seed=seed, progress=False)
    nll = -float(model.log_prob(test).astype("float64").mean())
    return nll - toy.entropy


def torch_gap(toy, seed, steps, test):
    import torch
    from torch_models import TorchR2

    torch.manual_seed(seed)
    model = TorchR2()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = make_rng(seed)
    for _ in range(steps):
        x = torch.from_numpy(toy.sample(512, rng))
        optimizer.zero_grad()
        (-model.log_prob(x).mean()).backward()
        optimizer.step()
    with torch.no_grad():
        nll = -model.log_prob(torch.from_numpy(test)).double().mean().item()
    return nll - toy.entropy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    exact = [name for name, toy in TOY_DENSITIES.items() if toy.has_log_prob]
    parser.add_argument("--dataset", choices=exact, default="gaussians8")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--test-samples", type=int, default=100_000)
    parser.add_argument("--only", choices=("minflow", "torch"))
    parser.add_argument("--json", help="write the gaps as JSON here")
    args = parser.parse_args(argv)
    toy = get_toy(args.dataset)
    test = toy.sample(args.test_samples, make_rng(TEST_SEED))
    frameworks = {"minflow": minflow_gap, "torch": torch_gap}
    if args.only:
        frameworks = {args.only: frameworks[args.only]}
    gaps = {name: {} for name in frameworks}
    for seed in args.seeds:
        for name, gap_of in frameworks.items():
            gaps[name][seed] = gap_of(toy, seed, args.steps, test)
            print(f"{args.dataset} seed {seed} {name:<8} NLL - H = {gaps[name][seed]:.4f} nats", flush=True)
    for name, by_seed in gaps.items():
        values = list(by_seed.values())
        spread = f"min {min(values):.4f}, max {max(values):.4f}"
        print(f"{name:<8} mean {statistics.mean(values):.4f} over {len(values)} seeds ({spread})")
    if args.json:
        write_json(args.json, {"dataset": args.dataset, "steps": args.steps, "gaps": gaps})
    return gaps


if __name__ == "__main__":
    main()
