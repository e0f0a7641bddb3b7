"""TarFlow's noise augmentation on the 8x8 digits: test bits/dim, and samples before and after denoising.

    python benchmarks/tarflow_noise.py [--epochs 20] [--sigmas 0 0.1 0.3] [--json PATH] [--figure PATH]

For each sigma, trains ``zoo.tarflow_digits`` with ``python -m minflow tarflow
--noise SIGMA`` (sigma 0: no noise), then draws 64 samples at temperature 1
and, for sigma > 0, the same samples after one Tweedie step
(``zoo.noise.sample_denoised``). Reports the clean test bits/dim (comparable
with D8), the noisy test bits/dim, and, as a rough measure of sample
quality, the mean distance of each sample to its nearest training digit
(root mean square over the 64 pixels, intensities in [0, 1]) and the mean
of the sample pixels' distances to the nearest of the 17 grey levels' bin
centres. Writes the numbers as JSON and the grids side by side as one figure.
"""

import argparse
import json
import os
import sys
import tempfile

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minflow.__main__ import main as minflow_main
from minflow.backend import make_rng
from minflow.checkpoint import load_checkpoint
from minflow.commands import write_json
from minflow.data.digits import N_LEVELS, load_digits
from minflow.zoo import tarflow_digits
from minflow.zoo.noise import sample_denoised


def nearest_train_distance(samples, train):
    """Mean over samples of the RMS pixel distance to the nearest training digit; samples (n, 8, 8) in [0, 1]."""
    a = samples.reshape(len(samples), -1)
    b = (train.reshape(len(train), -1) + 0.5) / N_LEVELS
    d2 = (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None, :]
    return float(numpy.sqrt(numpy.maximum(d2.min(axis=1), 0) / a.shape[1]).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--json", default=None)
    parser.add_argument("--figure", default=None)
    parser.add_argument("--train-size", type=int, default=None, help="use the first N training digits (tests)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--eval-draws", type=int, default=10)
    args = parser.parse_args(argv)
    size = ["--dim", str(args.dim), "--blocks", str(args.blocks), "--eval-draws", str(args.eval_draws)]
    size += ["--train-size", str(args.train_size)] if args.train_size else []
    train = load_digits("train")
    rows, panels = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for sigma in args.sigmas:
            ckpt, out = os.path.join(tmp, f"s{sigma}.npz"), os.path.join(tmp, f"s{sigma}.json")
            noise = ["--noise", str(sigma)] if sigma > 0 else []
            cmd = ["tarflow", "--epochs", str(args.epochs), "--checkpoint", ckpt, "--json", out, "--no-figures"]
            if minflow_main([*cmd, "--no-progress", *size, *noise]):
                raise SystemExit(f"python -m minflow {' '.join(cmd)} failed")
            with open(out) as f:
                result = json.load(f)
            model = tarflow_digits(hidden=args.dim, blocks=args.blocks)
            load_checkpoint(ckpt, model)
            row = {
                "sigma": sigma,
                "test_bpd": result["test_bpd"],
                "final_test_bpd": result["test_bpd"][-1],
                "noisy_test_bpd": result.get("noisy_test_bpd"),
                "train_seconds": result["seconds"],
            }
            if sigma > 0:
                v, v_hat = (s[:, 0] for s in sample_denoised(model, 64, sigma, rng=make_rng(0)))
                row["nearest_train_rms"] = {"raw": nearest_train_distance(v, train)}
                row["nearest_train_rms"]["denoised"] = nearest_train_distance(v_hat, train)
                panels += [(f"sigma {sigma:g}, raw", v), (f"sigma {sigma:g}, denoised", v_hat)]
            else:
                v = numpy.clip(model.sample(64, rng=make_rng(0))[:, 0], 0, 1)
                row["nearest_train_rms"] = {"raw": nearest_train_distance(v, train)}
                panels.append(("no noise", v))
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        config = {k: v for k, v in vars(args).items() if k not in ("json", "figure")}
        write_json(args.json, {"config": config, "threads": os.environ.get("OMP_NUM_THREADS"), "runs": rows})
    if args.figure:
        from matplotlib.figure import Figure

        from minflow.viz.images import show_images

        fig = Figure(figsize=(2.3 * len(panels), 2.6))
        for ax, (title, images) in zip(fig.subplots(1, len(panels)), panels):
            show_images(ax, images[:36], 6, title)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=72)
    return rows


if __name__ == "__main__":
    main()
