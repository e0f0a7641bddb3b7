"""minflow on a busy machine: the BLAS library's default threads against minflow's thread policy.

    python benchmarks/busy.py [--parts steps demo lesson] [--json benchmarks/results/busy.json]

A student's laptop is rarely idle: a browser, a video call, another
notebook. This benchmark starts one competing process that keeps one core
busy (a pure-Python loop in a session of its own, killed when the benchmark
ends and, at the latest, after ``--busy-limit`` seconds) and measures, with that process running
("busy") and stopped by SIGSTOP ("idle"), under two thread policies:

    default  the BLAS library's own thread count (OpenBLAS: one per core),
             what NumPy does when nobody chooses (``set_threads(0)``);
    policy   minflow's choice (``minflow.threads``: one thread unless
             ``MINFLOW_THREADS`` says otherwise).

Parts:

    steps   training steps of R2, P2 and D8 (``compare.py``'s minflow cases):
            median ms per step; the four cells (idle, busy) x (default,
            policy) alternate in blocks of ``BLOCK`` steps in one process,
            so that a change of the machine's other load hits all alike;
    demo    ``python -m minflow demo`` (``--demo-steps`` steps, no figures),
            its ms per step as the command reports it, ``--threads 0``
            against the default; the four cells in turn, ``--rounds`` times
            (median);
    lesson  lesson 02 (coupling layers) in fast mode (``MINFLOW_FAST=1``), executed with
            nbclient, seconds from the kernel's start to the last cell; a first cell
            ``minflow.set_threads(...)`` is inserted into a copy (the policy)
            or ``set_threads(0)`` (the default); the four cells in turn,
            ``--rounds`` times (median).

Ratios: busy / idle for each policy (1.0 = the busy neighbour costs
nothing), and default / policy beside the busy process. The script must
run without ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` caps: with them
the library's default is already one thread and the two policies coincide
(it says so and stops).
"""

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minflow
from minflow.commands import write_json
from minflow.threads import blas_threads, thread_limit, threads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("r2", "p2", "d8")
STEPS = {"r2": 200, "p2": 200, "d8": 10}  # timed steps per policy and condition
BLOCK = {"r2": 10, "p2": 10, "d8": 2}  # steps of one policy before switching to the other
WARMUP = 3  # untimed steps of each policy first
POLICIES = ("default", "policy")
CONDITIONS = ("idle", "busy")
LESSON = os.path.join(ROOT, "lessons", "02_coupling_layers.ipynb")
CAPS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class BusyNeighbour:
    """One process that keeps a core busy, for ``limit`` seconds at most; ``set(condition)`` runs or stops it.

    with BusyNeighbour(600) as busy:
        busy.set("busy")   # running (SIGCONT)
        busy.set("idle")   # stopped (SIGSTOP): no CPU at all
    """

    def __init__(self, limit):
        self.limit = limit
        self.process = None

    def __enter__(self):
        loop = (  # ends at the time limit, or when this process is gone (its parent changes)
            f"import os, time\nend = time.monotonic() + {self.limit}\n"
            f"while time.monotonic() < end and os.getppid() == {os.getpid()}: pass\n"
        )
        # its own session: Linux's autogroup scheduling shares the CPU fairly between sessions, and a
        # browser or a video call is another program, not a child of the one it slows down
        self.process = subprocess.Popen([sys.executable, "-c", loop], start_new_session=True)
        time.sleep(0.5)  # let it reach the loop
        return self

    def set(self, condition):
        self.process.send_signal(signal.SIGCONT if condition == "busy" else signal.SIGSTOP)
        time.sleep(0.05)  # the scheduler sees the change

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def policy_count(policy):
    """The BLAS thread count of a policy (0: the library's own)."""
    return 0 if policy == "default" else threads()


def time_steps(model, n_steps, block, neighbour):
    """{condition: {policy: [seconds per step]}} for one model, the four cells alternating in blocks."""
    import compare

    make_batch, step, _ = compare.CASES[(model, "minflow")]()
    times = {c: {p: [] for p in POLICIES} for c in CONDITIONS}
    for p in POLICIES:
        with thread_limit(policy_count(p)):
            for _ in range(WARMUP):
                step(make_batch())
    while len(times["idle"]["default"]) < n_steps:
        for c in CONDITIONS:
            neighbour.set(c)
            for p in POLICIES:
                with thread_limit(policy_count(p)):
                    for _ in range(block):
                        batch = make_batch()  # outside the timer
                        start = time.perf_counter()
                        step(batch)
                        times[c][p].append(time.perf_counter() - start)
    return times


def run_demo(policy, steps):
    """ms per step of ``python -m minflow demo`` under a policy, as its JSON reports it."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "demo.json")
        argv = ["demo", "--steps", str(steps), "--test-samples", "10000", "--no-figures", "--no-progress"]
        argv += ["--json", path, "--threads", str(policy_count(policy))]
        subprocess.run([sys.executable, "-m", "minflow", *argv], cwd=ROOT, check=True, capture_output=True)
        with open(path) as f:
            return json.load(f)["ms_per_step"]


def run_lesson(policy, lesson):
    """Seconds to execute ``lesson`` in fast mode, with ``minflow.set_threads(count)`` as its first cell."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(lesson, as_version=4)
    count = policy_count(policy)
    nb.cells.insert(0, nbformat.v4.new_code_cell(f"import minflow\nminflow.set_threads({count})"))
    km = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    with tempfile.TemporaryDirectory() as figdir:
        env = dict(os.environ, MINFLOW_FAST="1", MINFLOW_FIGDIR=figdir)
        env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p])
        client = NotebookClient(nb, km=km, timeout=1200, resources={"metadata": {"path": os.path.dirname(lesson)}})
        start = time.perf_counter()
        with client.setup_kernel(env=env):
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        return time.perf_counter() - start


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def ratios(cells):
    """busy / idle per policy and default / policy per condition, from {condition: {policy: value}}."""
    out = {}
    for p in POLICIES:
        if all(p in cells.get(c, {}) for c in CONDITIONS):
            out[f"{p}_busy_over_idle"] = cells["busy"][p] / cells["idle"][p]
    for c in CONDITIONS:
        if all(p in cells.get(c, {}) for p in POLICIES):
            out[f"{c}_default_over_policy"] = cells[c]["default"] / cells[c]["policy"]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=("steps", "demo", "lesson"), default=["steps", "demo", "lesson"])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="models of the steps part")
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply the timed steps (quick runs: 0.05)")
    parser.add_argument("--demo-steps", type=int, default=200, help="steps of each demo run (default 200)")
    parser.add_argument(
        "--lesson", default=LESSON, help="the notebook of the lesson part (default: lesson 02, coupling layers)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each cell in the demo and lesson parts")
    parser.add_argument("--busy-limit", type=float, default=3600, help="seconds after which the busy process ends")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)

    capped = {k: os.environ[k] for k in CAPS if k in os.environ}
    library = max(blas_threads().values(), default=1)
    if library < 2:
        print(f"The BLAS library runs {library} thread here ({capped or 'no caps set'}); unset the caps to compare.")
        return 1
    print(f"minflow {minflow.__version__}, NumPy's BLAS {blas_threads()} by default, policy {threads()} thread(s)")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; load average {load_average()}")
    report = {
        "cores": os.cpu_count(),
        "library_threads": library,
        "policy_threads": threads(),
        "load_average_before": load_average(),
        "parts": {},
    }
    with BusyNeighbour(args.busy_limit) as neighbour:
        if "steps" in args.parts:
            steps = {}
            for model in args.models:
                n = max(2, round(STEPS[model] * args.steps_scale))
                times = time_steps(model, n, BLOCK[model], neighbour)
                cells = {c: {p: 1000 * statistics.median(t) for p, t in times[c].items()} for c in CONDITIONS}
                for c in CONDITIONS:
                    print(f"{model} {c}: " + ", ".join(f"{p} {v:.2f} ms/step" for p, v in cells[c].items()), flush=True)
                steps[model] = {"ms_per_step": cells, "steps": n, **ratios(cells)}
            report["parts"]["steps"] = steps
        runners = {"demo": lambda p: run_demo(p, args.demo_steps), "lesson": lambda p: run_lesson(p, args.lesson)}
        for part in ("demo", "lesson"):
            if part not in args.parts:
                continue
            runs = {c: {p: [] for p in POLICIES} for c in CONDITIONS}
            for _ in range(args.rounds):
                for c in CONDITIONS:
                    neighbour.set(c)
                    for p in POLICIES:
                        runs[c][p].append(runners[part](p))
                        print(f"{part} {c} {p}: {runs[c][p][-1]:.2f}", flush=True)
            cells = {c: {p: statistics.median(v) for p, v in runs[c].items()} for c in CONDITIONS}
            unit = "ms_per_step" if part == "demo" else "seconds"
            what = {"steps": args.demo_steps} if part == "demo" else {"lesson": os.path.relpath(args.lesson, ROOT)}
            report["parts"][part] = {unit: cells, f"{unit}_runs": runs, **what, **ratios(cells)}
    report["load_average_after"] = load_average()
    print(f"load average after: {report['load_average_after']}")
    print("| part | idle default | idle policy | busy default | busy policy | busy/idle default | busy/idle policy |")
    print("|---|---|---|---|---|---|---|")
    rows = [(m, r["ms_per_step"]) for m, r in report["parts"].get("steps", {}).items()]
    rows += [
        (name, part.get("ms_per_step") or part.get("seconds"))
        for name, part in report["parts"].items()
        if name != "steps"
    ]
    for name, cells in rows:
        r = ratios(cells)
        values = [f"{cells[c][p]:.2f}" for c in CONDITIONS for p in POLICIES]
        print(
            f"| {name} | "
            + " | ".join(values)
            + f" | {r['default_busy_over_idle']:.2f} | {r['policy_busy_over_idle']:.2f} |"
        )
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
