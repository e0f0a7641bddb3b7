"""TarFlow on the 8x8 digits beside D8: test bits/dim over epochs, wall time, sampling time.

    python benchmarks/tarflow_digits.py [--epochs 20] [--patch 2] [--json PATH]

Trains ``zoo.tarflow_digits`` by D8's recipe (reference-problems.md,
section 3): the 1,497 training digits, batch 64 of fresh dequantisation
noise, Adam lr 1e-3, float32; after every epoch, test bits/dim on the 300
test digits with 10 fixed dequantisation draws (``zoo.evaluate_bpd``).
Prints one line per epoch and writes the curve, the parameter count, the
training wall time and the time to draw 64 samples (TarFlow: T sequential
conditioner steps per block; D8: one inverse pass) as JSON.
"""

import argparse
import os
import sys
import time

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minflow.commands import write_json
from minflow.commands.digits import keep_freed_memory
from minflow.data.digits import N_LEVELS, load_digits
from minflow.flows.preprocessing import dequantize
from minflow.optim import Adam
from minflow.train import fit
from minflow.zoo import d8, evaluate_bpd, tarflow_digits

EVAL_SEED = 0  # the 10 fixed dequantisation draws of every evaluation, as the digits command


def train_epoch(model, optimizer, images, rng, batch_size):
    """One epoch of shuffled batches; returns (train bpd, seconds)."""
    perm = rng.permutation(len(images))
    batches = [perm[i : i + batch_size] for i in range(0, len(images), batch_size)]
    total = [0.0]

    def loss_and_backward(step):
        idx = batches[step]
        v, _ = dequantize(images[idx], N_LEVELS, rng, numpy.float32)  # (B, 1, 8, 8)
        loss = model.nll_and_backward(v)
        total[0] = total[0] + loss * len(idx)
        return loss

    history = fit(model, loss_and_backward, len(batches), optimizer, log_every=len(batches), progress=False)
    return model.bits_per_dim(-float(total[0]) / len(images), N_LEVELS), history["seconds"]


def sampling_seconds(model, n=64, repeats=3):
    """Best of ``repeats`` wall times of drawing n samples (float32)."""
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        model.sample(n, rng=numpy.random.default_rng(r))
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patch", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--alpha-bound", type=float, default=2.0)
    parser.add_argument("--train-size", type=int, default=None, help="use the first N training digits (tests)")
    parser.add_argument("--eval-draws", type=int, default=10)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    keep_freed_memory()  # as `python -m minflow digits`: no page faults for each step's activations

    train_images = load_digits("train")[: args.train_size]
    test_images = load_digits("test")
    model = tarflow_digits(
        patch=args.patch,
        blocks=args.blocks,
        hidden=args.dim,
        depth=args.depth,
        alpha_bound=args.alpha_bound,
        seed=args.seed,
    )
    optimizer = Adam(model.params, model.grads, lr=args.lr)
    rng = numpy.random.default_rng(args.seed + 1)  # shuffling and dequantisation noise
    curve = {"epoch": [], "train_bpd": [], "test_bpd": [], "test_iw_bpd": [], "seconds": []}
    train_seconds = 0.0
    for epoch in range(1, args.epochs + 1):
        train_bpd, seconds = train_epoch(model, optimizer, train_images, rng, args.batch_size)
        train_seconds += seconds
        test = evaluate_bpd(model, test_images, N_LEVELS, args.eval_draws, EVAL_SEED)
        for key, value in [("epoch", epoch), ("train_bpd", train_bpd), ("test_bpd", test["bpd"])]:
            curve[key].append(value)
        curve["test_iw_bpd"].append(test["iw_bpd"])
        curve["seconds"].append(train_seconds)
        print(f"epoch {epoch}: train {train_bpd:.4f}  test {test['bpd']:.4f} bpd  ({train_seconds:.0f} s)", flush=True)
    result = {
        "model": "tarflow_digits",
        "config": vars(args),
        "parameters": model.num_params(),
        "curve": curve,
        "final_test_bpd": curve["test_bpd"][-1],
        "best_test_bpd": min(curve["test_bpd"]),
        "train_seconds": train_seconds,
        "sample_64_seconds": sampling_seconds(model),
        "d8_sample_64_seconds": sampling_seconds(d8()),
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }
    print(
        f"{result['parameters']:,} parameters; test {result['final_test_bpd']:.4f} bpd after {args.epochs} epochs "
        f"(best {result['best_test_bpd']:.4f}); 64 samples in {result['sample_64_seconds']:.3f} s "
        f"(D8 {result['d8_sample_64_seconds']:.3f} s)"
    )
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
