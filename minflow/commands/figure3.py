"""``python -m minflow figure3``: Rezende & Mohamed (2015) Figure 3, reproduced, with a table of KLs.

    python -m minflow figure3 --steps 10000 --seeds 0 1 2 --json runs/figure3/figure3.json

A grid: rows U1..U4; columns the true density exp(-U - wall) / Z, planar flows
with K = 2, 8 and 32 layers, a radial flow with K = 32, and R2 (8 affine
couplings), each trained by reverse KL with the P2 recipe (batch 256, Adam
lr 5e-3, float32) and drawn exactly on a grid, with KL(q || p) (float64, 10^5
samples) in the panel title. With several seeds, every model is trained once
per seed, the panels show the first seed (the figure is written as soon as
that seed is done) and the JSON keeps every run; the summary and the README
table give the mean, min and max KL over seeds. The JSON is rewritten after
each run, so a long job can be watched (and its finished runs kept).
"""

import os
import statistics
import time

from ..data.energy import ENERGY_TARGETS, get_energy
from . import add_command_parser, markdown_grid, positive_int, pyplot, save_pyplot_figure, write_json
from .energy import PLOT_CELLS, density_on_grid, draw_density, model_log_prob, train_on_energy
from .paths import RUNS, check_output_file

__all__ = ["COLUMNS", "add_parser", "run"]

# (flow, K, panel label) of the trained columns, in the order of the paper's figure
COLUMNS = (
    ("planar", 2, "planar K=2"),
    ("planar", 8, "planar K=8"),
    ("planar", 32, "planar K=32"),
    ("radial", 32, "radial K=32"),
    ("realnvp", 8, "R2 (8 couplings)"),
)


def add_parser(subparsers):
    p = add_command_parser(
        subparsers,
        "figure3",
        help="reproduce Rezende & Mohamed (2015) Figure 3: U1..U4 x {planar 2, 8, 32; radial 32; R2}",
        doc=__doc__,
    )
    p.add_argument("--steps", type=positive_int, default=10_000, help="training steps per model (default 10000)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds; panels show the first (default 0)")
    p.add_argument(
        "--targets", nargs="+", choices=ENERGY_TARGETS, default=list(ENERGY_TARGETS), help="rows (default all)"
    )
    p.add_argument("--kl-samples", type=positive_int, default=10**5, help="samples of each KL estimate (default 1e5)")
    p.add_argument(
        "--json", default=os.path.join(RUNS, "figure3", "figure3.json"), help="results (default %(default)s)"
    )
    p.add_argument(
        "--figure", default=os.path.join(RUNS, "figure3", "figure3_energy.png"), help="figure (default %(default)s)"
    )
    p.add_argument("--grid-cells", type=positive_int, default=PLOT_CELLS, help="grid cells per axis (default 200)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(run=run)
    return p


def summarize(runs):
    """Per (target, flow, K): mean, min and max KL and the mean ms/step over the runs."""
    groups = {}
    for r in runs:
        groups.setdefault((r["target"], r["flow"], r["layers"]), []).append(r)
    out = []
    for (target, flow, layers), rs in groups.items():
        kls = [r["kl"] for r in rs]
        out.append(
            {
                "target": target,
                "flow": flow,
                "layers": layers,
                "seeds": [r["seed"] for r in rs],
                "kl": kls,
                "kl_mean": statistics.fmean(kls),
                "kl_min": min(kls),
                "kl_max": max(kls),
                "ms_per_step": statistics.fmean(r["ms_per_step"] for r in rs),
            }
        )
    return out


def markdown_table(summary, targets):
    """The README table: one row per target, one column per model, 'mean (min-max)' over seeds."""
    cell = {(s["target"], s["flow"], s["layers"]): s for s in summary}
    rows = []
    for target in targets:
        row = []
        for flow, layers, _ in COLUMNS:
            s = cell.get((target, flow, layers))
            if s is None:
                row.append("")
            elif len(s["kl"]) == 1:
                row.append(f"{s['kl_mean']:.3f}")
            else:
                row.append(f"{s['kl_mean']:.3f} ({s['kl_min']:.3f}-{s['kl_max']:.3f})")
        rows.append((target, row))
    return markdown_grid("target", [label for _, _, label in COLUMNS], rows)


def run(args):
    check_output_file(args.json, "--json")
    check_output_file(args.figure, "--figure", example="figure3_energy.png")
    start = time.perf_counter()
    runs, panels = [], {}
    data = {"steps": args.steps, "seeds": args.seeds, "targets": args.targets, "figure": args.figure, "runs": runs}
    for target in args.targets:
        panels[(target, "true")], _ = density_on_grid(get_energy(target).log_prob, args.grid_cells)
    for seed in args.seeds:  # the first seed's runs complete the figure before the other seeds start
        for target in args.targets:
            for flow, layers, _ in COLUMNS:
                model, result = train_on_energy(
                    target, flow, layers, args.steps, seed, kl_samples=args.kl_samples, progress=not args.no_progress
                )
                runs.append(result)
                print(
                    f"{target} {flow:8s} K={layers:<2d} seed {seed}: KL {result['kl']:.4f} +- {result['kl_stderr']:.4f}"
                    f"  ({result['ms_per_step']:.2f} ms/step)",
                    flush=True,
                )
                if seed == args.seeds[0]:
                    panels[(target, flow, layers)], _ = density_on_grid(model_log_prob(model), args.grid_cells)
                data["summary"] = summarize(runs)
                data["table"] = markdown_table(data["summary"], args.targets)
                data["seconds"] = time.perf_counter() - start
                write_json(args.json, data)
        if seed == args.seeds[0]:
            kls = {(r["target"], r["flow"], r["layers"]): r["kl"] for r in runs}
            _save_figure(args.figure, args.targets, panels, kls)
            print(f"figure: {args.figure}", flush=True)
    print(data["table"])
    print(f"json: {args.json}")
    return 0


def _save_figure(path, targets, panels, kls):
    plt = pyplot()

    n_cols = 1 + len(COLUMNS)
    fig, axes = plt.subplots(len(targets), n_cols, figsize=(2.0 * n_cols, 2.3 * len(targets)), squeeze=False)
    for i, target in enumerate(targets):
        draw_density(axes[i, 0], panels[(target, "true")], f"{target}: exp(-U)/Z")
        for j, (flow, layers, label) in enumerate(COLUMNS, start=1):
            draw_density(axes[i, j], panels[(target, flow, layers)], f"{label}\nKL {kls[(target, flow, layers)]:.3f}")
    save_pyplot_figure(fig, path)
