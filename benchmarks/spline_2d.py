"""maf_2d, nsf_2d and nsf_ar_2d: quality on the 2D toys by the R2 recipe, and step time against their PyTorch twins.

    python benchmarks/spline_2d.py quality [--models ...] [--datasets ...] [--seeds 0 1 2] [--json PATH]
    python benchmarks/spline_2d.py quality --models maf_2d --options '{"scale": "softclip"}'
    python benchmarks/spline_2d.py speed [--models ...] [--json PATH]

quality: each model trained by R2's recipe (batch 512 of fresh exact samples,
Adam lr 1e-3, 5,000 steps, seeded data stream and initialisation), then the
test NLL minus the true entropy, KL(p || q) >= 0, on the same 10^5 held-out
samples that ``python -m minflow demo`` uses; every seed is printed and kept.
``--options`` passes keyword arguments (JSON) to the zoo builder, to
measure a variant (``maf_2d(n_layers=12, hidden=(52, 52))``, ...).

speed: the median time of one NLL training step (forward, backward, Adam)
of minflow's model and of its PyTorch twin (benchmarks/torch_spline_models.py),
timed interleaved, one step of each in turn, so that a busy machine slows
both alike; the ratio is the median of the per-pair ratios. For the MAF
models also the cost of sampling 10^4 points (D sequential passes per
layer) against a density evaluation of 10^4 points (one pass).
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)


from minflow.backend import make_rng
from minflow.commands import write_json
from minflow.commands.demo import TEST_SEED
from minflow.data.toy2d import get_toy
from minflow.optim import Adam
from minflow.train import fit_samples
from minflow.zoo import maf_2d, nsf_2d, nsf_ar_2d, realnvp_2d

MODELS = {"maf_2d": maf_2d, "nsf_2d": nsf_2d, "nsf_ar_2d": nsf_ar_2d, "realnvp_2d": realnvp_2d}
DATASETS = ("gaussians8", "checkerboard", "rings", "moons")


def gap(name, toy, seed, steps, test, options=None):
    model = MODELS[name](seed=seed, **(options or {}))
    fit_samples(model, toy.sample, steps, batch_size=512, lr=1e-3, seed=seed, progress=False)
    return -float(model.log_prob(test).astype("float64").mean()) - toy.entropy


def twin_of(name):
    import torch_spline_models as ts

    return {
        "maf_2d": lambda: ts.TorchMAF2D(20, "affine", (40, 40)),
        "nsf_ar_2d": lambda: ts.TorchMAF2D(5, "spline"),
        "nsf_2d": lambda: ts.TorchNSF2D(6),
    }[name]()


def speed(name, n_pairs=40):
    import torch
    from torch_models import load_minflow_params

    model = MODELS[name]()
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    twin = load_minflow_params(twin_of(name), model)
    torch_optimizer = torch.optim.Adam(twin.parameters(), lr=1e-3)
    toy, rng = get_toy("moons"), make_rng(0)

    def minflow_step(x):
        model.zero_grads()
        model.nll_and_backward(x)
        optimizer.step()

    def torch_step(x):
        torch_optimizer.zero_grad()
        (-twin.log_prob(torch.from_numpy(x)).mean()).backward()
        torch_optimizer.step()

    times = {"minflow": [], "torch": []}
    for i in range(n_pairs + 5):
        x = toy.sample(512, rng)
        for which, step in (("minflow", minflow_step), ("torch", torch_step)):
            start = time.perf_counter()
            step(x)
            if i >= 5:  # warm-up
                times[which].append(time.perf_counter() - start)
    ratios = [a / b for a, b in zip(times["minflow"], times["torch"])]
    out = {k: statistics.median(v) for k, v in times.items()}
    out["ratio"] = statistics.median(ratios)
    if name != "nsf_2d":  # autoregressive: sampling is D passes per layer, density one
        x = toy.sample(10_000, rng)
        start = time.perf_counter()
        model.log_prob(x)
        density = time.perf_counter() - start
        start = time.perf_counter()
        model.sample(10_000, rng)
        out["sampling_over_density"] = (time.perf_counter() - start) / density
    return out


def gaps_over_seeds(datasets, names, seeds, test_samples, train_gap, label=""):
    """NLL - H of each model on each toy and seed, printed as it comes.

    ``train_gap(name, toy, seed, test)`` trains one model and returns its gap
    on the test samples (``test_samples`` drawn with the demo's TEST_SEED).
    Returns {dataset: {name: {"gaps": {seed: gap}, "mean": mean over seeds}}}.
    """
    results = {}
    for dataset in datasets:
        toy = get_toy(dataset)
        test = toy.sample(test_samples, make_rng(TEST_SEED))
        for name in names:
            gaps = {}
            for seed in seeds:
                start = time.perf_counter()
                gaps[seed] = train_gap(name, toy, seed, test)
                took = time.perf_counter() - start
                print(
                    f"{dataset:<12} {label}{name:<10} seed {seed}: NLL - H = {gaps[seed]:.4f} ({took:.0f} s)",
                    flush=True,
                )
            results.setdefault(dataset, {})[name] = {"gaps": gaps, "mean": statistics.mean(gaps.values())}
            print(f"{dataset:<12} {label}{name:<10} mean {results[dataset][name]['mean']:.4f}", flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("quality", "speed"))
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=["maf_2d", "nsf_2d", "nsf_ar_2d"])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--test-samples", type=int, default=100_000)
    parser.add_argument("--options", type=json.loads, default={}, help="builder keyword arguments, as JSON")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)
    results = {}
    if args.what == "quality":

        def train_gap(name, toy, seed, test):
            return gap(name, toy, seed, args.steps, test, args.options)

        results = gaps_over_seeds(args.datasets, args.models, args.seeds, args.test_samples, train_gap)
    else:
        for name in args.models:
            results[name] = speed(name)
            print(name, {k: round(v, 5) for k, v in results[name].items()}, flush=True)
    if args.json:
        out = {"what": args.what, "steps": args.steps, "results": results}
        if args.options:
            out["options"] = args.options
        write_json(args.json, out)
    return results


if __name__ == "__main__":
    main()
