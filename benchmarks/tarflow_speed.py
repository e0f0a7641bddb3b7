"""TarFlow's training step and sampling, minflow against its PyTorch twin, timed interleaved.

    python benchmarks/tarflow_speed.py [--steps 20] [--patch 2] [--json PATH]

Both implementations build the same ``tarflow_digits`` configuration (the
PyTorch one starts from minflow's weights) and train on the same batches of
64 dequantised digits, float32, Adam lr 1e-3: one step of each in turn, after
two warm-up steps, so that a busy neighbour slows both alike. Reports the
median seconds per step (forward + backward + Adam; drawing the batch is
outside the timer), the median of the per-pair ratios minflow / PyTorch, and
the time to sample 64 images (minflow: T steps per block through the
key/value cache; the twin: T causal passes over the growing prefix).
"""

import argparse
import os
import statistics
import sys
import time

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minflow.commands import write_json
from minflow.commands.digits import keep_freed_memory
from minflow.data.digits import N_LEVELS, load_digits
from minflow.flows.preprocessing import dequantize
from minflow.optim import Adam
from minflow.zoo import tarflow_digits


def main(argv=None):
    import torch
    from torch_models import TorchTarFlow, load_minflow_params

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--patch", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    keep_freed_memory()  # as `python -m minflow digits`: no page faults for each step's activations

    model = tarflow_digits(patch=args.patch)
    twin = load_minflow_params(TorchTarFlow(patch=args.patch), model)
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    torch_optimizer = torch.optim.Adam(twin.parameters(), lr=1e-3)
    images = load_digits("train")
    rng = numpy.random.default_rng(0)

    def minflow_step(v):
        model.zero_grads()
        model.nll_and_backward(v)
        optimizer.step()

    def torch_step(v):
        torch_optimizer.zero_grad()
        (-twin.log_prob(v).mean()).backward()
        torch_optimizer.step()

    times = {"minflow": [], "torch": []}
    for step in range(args.steps + 2):
        idx = rng.choice(len(images), args.batch_size, replace=False)
        v, _ = dequantize(images[idx], N_LEVELS, rng, numpy.float32)
        for name, run, batch in [("minflow", minflow_step, v), ("torch", torch_step, torch.from_numpy(v))]:
            start = time.perf_counter()
            run(batch)
            if step >= 2:
                times[name].append(time.perf_counter() - start)
    ratios = [a / b for a, b in zip(times["minflow"], times["torch"])]

    def best_of_three(draw):
        out = []
        for _ in range(3):
            start = time.perf_counter()
            draw()
            out.append(time.perf_counter() - start)
        return min(out)

    result = {
        "config": vars(args),
        "parameters": model.num_params(),
        "minflow_step_s": statistics.median(times["minflow"]),
        "torch_step_s": statistics.median(times["torch"]),
        "ratio_step": statistics.median(ratios),
        "minflow_sample_64_s": best_of_three(lambda: model.sample(64, rng=numpy.random.default_rng(0))),
        "torch_sample_64_s": best_of_three(lambda: twin.sample(64)),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    result["ratio_sample"] = result["minflow_sample_64_s"] / result["torch_sample_64_s"]
    print(
        f"TarFlow p={args.patch} ({result['parameters']:,} parameters), batch {args.batch_size}: step "
        f"minflow {result['minflow_step_s'] * 1e3:.1f} ms, PyTorch {result['torch_step_s'] * 1e3:.1f} ms, "
        f"ratio {result['ratio_step']:.2f}; 64 samples minflow {result['minflow_sample_64_s']:.3f} s, "
        f"PyTorch {result['torch_sample_64_s']:.3f} s"
    )
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
