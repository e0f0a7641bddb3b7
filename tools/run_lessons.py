"""Run the lessons, in full or fast mode, and store their outputs.

Each lesson is a pair of files in ``lessons/``, kept in sync by jupytext (see
``lessons/jupytext.toml``): ``NN_topic.py``, the source in jupytext's
py:percent format, and ``NN_topic.ipynb``, the same cells with the outputs of
a full run, committed so the lessons read well on a repository host. This
script runs a lesson top to bottom with nbclient:

- full mode (MINFLOW_FAST unset): outputs go into ``lessons/NN_topic.ipynb``
  and figures into ``figures/`` (the committed ones);
- fast mode (``--fast``, MINFLOW_FAST=1): outputs go into
  ``runs/lessons/NN_topic.ipynb`` and figures into ``runs/figures/``
  (both git-ignored), nothing tracked is touched.

Usage (from the repository root; ``make lessons`` and ``make lesson N=03`` run
the first two lines):

    .venv/bin/python tools/run_lessons.py              # every lesson, full mode
    .venv/bin/python tools/run_lessons.py 03           # lesson 03, full mode
    .venv/bin/python tools/run_lessons.py 03 --fast    # lesson 03, fast mode
    .venv/bin/python tools/run_lessons.py --check      # exit 1 if a pair is out of sync

The kernel is the interpreter running this script (the native "python3"
kernel of ipykernel, whatever kernelspecs are installed), started in
``lessons/`` with the repository root on PYTHONPATH so ``import minflow``
works without installing.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
FAST_OUTPUTS = ROOT / "runs" / "lessons"
FULL_FIGDIR = "../figures"  # relative to lessons/, where the kernel runs
CELL_TIMEOUT = 1800  # seconds per cell in a full run (the longest trainings)

__all__ = [
    "execute_notebook",
    "lesson_sources",
    "main",
    "out_of_sync",
    "read_pair",
    "sync_command",
]


def lesson_sources(prefixes=()):
    """Lesson sources ``lessons/NN_*.py`` whose name starts with one of ``prefixes`` (all if empty)."""
    files = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
    if prefixes:
        files = [p for p in files if any(p.stem.startswith(pre) for pre in prefixes)]
    return files


def sync_command(source):
    """The shell command that brings the pair of ``source`` (a lesson's .py or .ipynb) back in sync."""
    return f".venv/bin/jupytext --sync lessons/{Path(source).stem}.py"


def read_pair(source):
    """The two notebooks of a pair, as jupytext reads them: ``(from the .py, from the .ipynb)``.

    Raises:
        FileNotFoundError if the .ipynb is missing, with the command that creates it.
    """
    source = Path(source)
    ipynb = source.with_suffix(".ipynb")
    if not ipynb.exists():
        raise FileNotFoundError(f"{ipynb.name} is missing; create it with `{sync_command(source)}`")
    return jupytext.read(source), jupytext.read(ipynb)


def out_of_sync(source):
    """A message saying how the pair of ``source`` differs, or None if both hold the same cells."""
    from_py, from_ipynb = read_pair(source)
    cells_py = [(c.cell_type, c.source) for c in from_py.cells]
    cells_ipynb = [(c.cell_type, c.source) for c in from_ipynb.cells]
    if cells_py == cells_ipynb:
        return None
    first = next(
        (i for i, (a, b) in enumerate(zip(cells_py, cells_ipynb)) if a != b),
        min(len(cells_py), len(cells_ipynb)),
    )
    return (
        f"{source.stem}.py and {source.stem}.ipynb differ (cell {first}; {len(cells_py)} cells in the .py, "
        f"{len(cells_ipynb)} in the .ipynb). Run `{sync_command(source)}` (it copies the cells of the file "
        f"saved last into the other, keeping the outputs); if code changed, `make lesson N={source.stem[:2]}` "
        "refreshes the outputs."
    )


def kernel_manager():
    """A kernel manager for the native python3 kernel of *this* interpreter.

    An empty list of kernel directories makes jupyter_client use ipykernel's
    own spec, which runs ``sys.executable``: no kernelspec needs installing,
    and a stray user-level "python3" kernelspec cannot pick another Python.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    return KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))


def lesson_env(fast, figdir):
    """Environment for a lesson kernel: the mode flag, the figure folder, minflow importable.

    ``figdir`` None leaves MINFLOW_FIGDIR unset, so the lesson writes to its
    default, ``../runs/figures`` (git-ignored). The kernel runs in ``lessons/``;
    the repository root goes first on PYTHONPATH so the lessons import this
    checkout's minflow.
    """
    env = dict(os.environ)
    env.pop("MINFLOW_FAST", None)
    env.pop("MINFLOW_FIGDIR", None)
    # One BLAS thread unless the caller says otherwise: on a busy machine a
    # multi-threaded BLAS that spins waiting for its threads can run a lesson
    # many times slower (measured here: lesson 03 in 39 s with 1 thread, over
    # 20 minutes with 2 threads on a machine shared with other jobs).
    env.setdefault("OMP_NUM_THREADS", "1")
    if fast:
        env["MINFLOW_FAST"] = "1"
    if figdir is not None:
        env["MINFLOW_FIGDIR"] = str(figdir)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def execute_notebook(nb, fast=False, figdir=None, timeout=CELL_TIMEOUT, after=None):
    """Run ``nb`` in place, top to bottom, in ``lessons/``; returns the seconds it took.

    Args:
        nb: a notebook (outputs are stored in it).
        fast: run with MINFLOW_FAST=1.
        figdir: MINFLOW_FIGDIR, where the lesson writes its figures (None: the
            lesson's default, ``runs/figures/``).
        timeout: seconds allowed per cell.
        after: optional ``after(run)`` called while the kernel is still alive,
            with ``run(source)`` executing one more cell and returning its
            printed text (it raises nbclient's CellExecutionError if the cell
            raises). The tests use it to probe the exercise checks.

    Raises:
        nbclient.exceptions.CellExecutionError if a cell raises.
    """
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        km=kernel_manager(),
        timeout=timeout,
        record_timing=False,
        resources={"metadata": {"path": str(LESSONS)}},
    )
    start = time.perf_counter()
    with client.setup_kernel(env=lesson_env(fast, figdir)):
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            seconds = time.perf_counter() - start
            if after is not None:
                scratch = nbformat.v4.new_notebook(cells=list(nb.cells))

                def run(source):
                    cell = nbformat.v4.new_code_cell(source)
                    scratch.cells.append(cell)
                    client.nb = scratch
                    try:
                        client.execute_cell(cell, len(scratch.cells) - 1, store_history=False)
                    finally:
                        client.nb = nb
                    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

                after(run)
        finally:
            client.km.shutdown_kernel(now=True)
            client.kc.stop_channels()
    return seconds


def run_lesson(source, fast):
    """Execute one lesson and write its notebook with outputs; returns (path written, seconds)."""
    problem = out_of_sync(source)
    if problem:
        raise SystemExit(problem)
    nb = jupytext.read(source.with_suffix(".ipynb"))  # the committed cells, ids and metadata
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    if fast:
        FAST_OUTPUTS.mkdir(parents=True, exist_ok=True)
        target = FAST_OUTPUTS / f"{source.stem}.ipynb"
        seconds = execute_notebook(nb, fast=True, figdir=None)
    else:
        target = source.with_suffix(".ipynb")
        seconds = execute_notebook(nb, fast=False, figdir=FULL_FIGDIR)
    nbformat.validate(nb)
    nbformat.write(nb, target)
    if not fast:
        # The .py stays the pair's more recent file, so Jupyter and `jupytext --sync` keep reading
        # the inputs from it (jupytext refuses to open a pair whose .py is older than its .ipynb).
        source.touch()
    return target, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("lessons", nargs="*", help="lesson number prefixes, e.g. 01 03 (default: all)")
    parser.add_argument("--fast", action="store_true", help="fast mode: outputs and figures under runs/")
    parser.add_argument("--check", action="store_true", help="only check that every .py/.ipynb pair is in sync")
    args = parser.parse_args(argv)
    sources = lesson_sources(args.lessons)
    if not sources:
        parser.error(f"no lesson matches {args.lessons} in {LESSONS} (lessons are named NN_topic.py)")
    if args.check:
        problems = [p for p in (out_of_sync(s) for s in sources) if p]
        print("\n".join(problems) if problems else f"{len(sources)} lesson pairs in sync")
        return 1 if problems else 0
    for source in sources:
        target, seconds = run_lesson(source, fast=args.fast)
        mode = "fast" if args.fast else "full"
        print(f"{source.stem}: ran in {seconds:.1f} s ({mode} mode), wrote {target.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
