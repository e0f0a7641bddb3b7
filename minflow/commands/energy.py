"""``python -m minflow energy``: fit a flow to an energy target by reverse KL, report KL(q || p).

    python -m minflow energy --target U1 --flow planar --layers 32 --steps 10000 --json out.json

Trains in float32 with the P2 recipe (batch 256, Adam lr 5e-3, fresh base
noise each step; docs/reference-problems.md section 3), then estimates
KL(q || p) = E_q[log q + U + wall] + ln Z in float64 on 10^5 samples and draws
the true density beside the trained one, the latter exactly on a grid (through
the numerical inverse for planar and radial layers). The helpers here are
shared with ``python -m minflow figure3``.
"""

import os
import time

import numpy

from ..backend import DEFAULT_DTYPE, to_device, to_numpy
from ..data.energy import ENERGY_TARGETS, get_energy, grid_log_density, reverse_kl
from ..zoo.p2 import P2_RECIPE, fit_reverse_kl, planar_2d, radial_2d
from ..zoo.r2 import realnvp_2d
from ..zoo.spline_2d import IAF_BOUND, iaf_2d
from . import DeprecatedFlag, add_command_parser, positive_float, positive_int, pyplot, save_pyplot_figure, write_json
from .paths import RUNS, check_output_file

__all__ = ["FLOWS", "add_parser", "build_model", "density_on_grid", "draw_density", "run", "train_on_energy"]

FLOWS = ("planar", "radial", "realnvp", "iaf")
DEFAULT_LAYERS = {"planar": 32, "radial": 32, "realnvp": 8, "iaf": 2}
PLOT_BOX = 4.0  # panels show [-4, 4]^2, where all four targets live
PLOT_CELLS = 200


def build_model(flow, layers, seed=0, dtype=DEFAULT_DTYPE, bound=IAF_BOUND):
    """A FlowModel over N(0, I2): ``layers`` planar or radial layers, R2 with ``layers`` couplings,
    or the spline IAF (``zoo.iaf_2d`` on [-bound, bound]) with ``layers`` autoregressive layers."""
    if flow == "planar":
        return planar_2d(layers, dtype=dtype, seed=seed)
    if flow == "radial":
        return radial_2d(layers, dtype=dtype, seed=seed)
    if flow == "realnvp":
        return realnvp_2d(n_layers=layers, dtype=dtype, seed=seed)
    if flow == "iaf":
        return iaf_2d(n_layers=layers, bound=bound, dtype=dtype, seed=seed)
    raise ValueError(f"Unknown flow {flow!r}; expected one of {FLOWS}.")


def train_on_energy(
    target, flow, layers, steps, seed=0, batch_size=256, lr=5e-3, kl_samples=10**5, progress=True, bound=IAF_BOUND
):
    """Build, train and evaluate one model; returns (model, result dict).

    The result has the keys of the JSON output: target, flow, layers, seed,
    steps, batch_size, lr, kl, kl_stderr, log_z, seconds (training only),
    ms_per_step, final_loss; and bound for the IAF (its splines map [-bound, bound]).
    """
    energy = get_energy(target)
    model = build_model(flow, layers, seed, bound=bound)
    start = time.perf_counter()
    history = fit_reverse_kl(
        model,
        energy,
        n_steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        progress=progress,
        desc=f"{target} {flow} K={layers}",
    )
    seconds = time.perf_counter() - start
    kl, stderr = reverse_kl(model, energy, n_samples=kl_samples, seed=seed + 10_000)
    result = {
        "target": target,
        "flow": flow,
        "layers": layers,
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "kl": kl,
        "kl_stderr": stderr,
        "log_z": energy.log_z,
        "seconds": seconds,
        "ms_per_step": 1000 * seconds / steps,
        "final_loss": history["loss"][-1],
    }
    if flow == "iaf":
        result["bound"] = bound
    return model, result


def density_on_grid(log_prob, n=PLOT_CELLS, box=PLOT_BOX):
    """exp(log q) on an n x n grid over [-box, box]^2 (float64 host array, [i1, i2]) and the cell width."""
    log_q, h = grid_log_density(log_prob, n, box)
    return numpy.exp(log_q), h


def model_log_prob(model):
    """log q(z) of a float64 copy of ``model`` as a host function: host z (N, 2) in, host (N,) out.

    The copy stays on the model's device (NumPy or CuPy); each call moves z
    there and brings log q back. The model itself is left alone.
    """
    import copy

    model64 = copy.deepcopy(model).astype(numpy.float64)
    xp = model64.xp
    return lambda z: to_numpy(model64.log_prob(to_device(z, xp)))  # (N,)


def draw_density(ax, density, title, box=PLOT_BOX):
    """One panel: a density on [-box, box]^2, z1 across and z2 up, no ticks."""
    ax.imshow(density.T, origin="lower", extent=(-box, box, -box, box), cmap="viridis", interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def add_parser(subparsers):
    p = add_command_parser(
        subparsers,
        "energy",
        help="fit a flow to an energy target U1..U4 by reverse KL",
        doc=__doc__,
    )
    p.add_argument("--target", choices=ENERGY_TARGETS, default="U1", help="energy target (default U1)")
    p.add_argument(
        "--flow",
        choices=FLOWS,
        default="planar",
        help="planar, radial, realnvp (R2) or iaf (spline IAF) (default planar)",
    )
    p.add_argument("--layers", type=positive_int, default=None, help="K: layers (default 32; realnvp 8; iaf 2)")
    p.add_argument(
        "--bound",
        type=positive_float,
        default=None,
        metavar="B",
        help=f"--flow iaf: each spline maps [-B, B] (default {IAF_BOUND:g}; iaf_2d's earlier models: 5)",
    )
    p.add_argument("--steps", type=positive_int, default=P2_RECIPE["n_steps"], help="training steps (default 10000)")
    p.add_argument(
        "--batch-size", type=positive_int, default=P2_RECIPE["batch_size"], help="base samples per step (default 256)"
    )
    p.add_argument("--lr", type=positive_float, default=P2_RECIPE["lr"], help="Adam learning rate (default 5e-3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the noise (default 0)")
    p.add_argument("--kl-samples", type=positive_int, default=10**5, help="samples of the KL estimate (default 1e5)")
    p.add_argument("--json", default=None, help="write the result as JSON here")
    p.add_argument("--figure", default=None, help=f"figure path (default {RUNS}/energy/energy_<target>_<flow><K>.png)")
    p.add_argument("--no-figures", action="store_true", help="skip the figure")
    p.add_argument("--no-figure", action=DeprecatedFlag, use="--no-figures", dest="no_figures")
    p.add_argument("--grid-cells", type=positive_int, default=PLOT_CELLS, help="grid cells per axis (default 200)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)
    return p


def run(args):
    layers = args.layers or DEFAULT_LAYERS[args.flow]
    if args.bound is not None and args.flow != "iaf":
        raise ValueError(f"--bound sets the spline IAF's interval; --flow {args.flow} has no splines. Drop --bound.")
    figure = args.figure or os.path.join(RUNS, "energy", f"energy_{args.target}_{args.flow}{layers}.png")
    if not args.no_figures:
        check_output_file(figure, "--figure", example="energy.png")
    if args.json:
        check_output_file(args.json, "--json")
    model, result = train_on_energy(
        args.target,
        args.flow,
        layers,
        args.steps,
        args.seed,
        args.batch_size,
        args.lr,
        args.kl_samples,
        not args.no_progress,
        IAF_BOUND if args.bound is None else args.bound,
    )
    print(
        f"{args.target} {args.flow} K={layers}: KL(q || p) = {result['kl']:.4f} +- {result['kl_stderr']:.4f} nats "
        f"(ln Z = {result['log_z']:.5f}), {result['steps']} steps in {result['seconds']:.1f} s "
        f"({result['ms_per_step']:.2f} ms/step)"
    )
    if not args.no_figures:
        result["figure"] = figure
        _save_figure(figure, args.target, model, f"{args.flow} K={layers}", result["kl"], args.grid_cells)
        print(f"figure: {figure}")
    if args.json:
        write_json(args.json, result)
        print(f"json: {args.json}")
    return 0


def _save_figure(path, target, model, label, kl, cells):
    plt = pyplot()

    energy = get_energy(target)
    true, _ = density_on_grid(energy.log_prob, cells)
    fitted, _ = density_on_grid(model_log_prob(model), cells)
    fig, axes = plt.subplots(1, 2, figsize=(6, 3.2))
    draw_density(axes[0], true, f"{target}: exp(-U) / Z")
    draw_density(axes[1], fitted, f"{label}, KL {kl:.3f}")
    save_pyplot_figure(fig, path, dpi=120)
