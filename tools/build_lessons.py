"""Build the lesson notebooks from their sources, and optionally run them.

Each lesson is written as a Python module ``tools/lessons/NN_topic.py`` that
defines ``CELLS``, a list of ``md(...)`` and ``code(...)`` cells (plain
strings, easy to diff and review). This script turns each into
``lessons/NN_topic.ipynb`` with nbformat, and with ``--execute`` runs it top
to bottom with nbclient in *full* mode (MINFLOW_FAST unset), storing the
outputs in the notebook and writing its figures to ``figures/``: the committed
notebooks carry the outputs of a full run, so they read well on a repository
host.

Usage (from the repository root):

    .venv/bin/python tools/build_lessons.py                  # all lessons, no outputs
    .venv/bin/python tools/build_lessons.py 03 --execute     # lesson 03, run in full mode
    .venv/bin/python tools/build_lessons.py --execute --fast # quick smoke run (figures to a temp dir)
    .venv/bin/python tools/build_lessons.py --check          # exit 1 if a notebook is out of date

The kernel is the interpreter running this script (the native "python3"
kernel of ipykernel, whatever kernelspecs are installed), with the
repository root on PYTHONPATH so ``import minflow`` works without installing.
"""

import argparse
import os
import runpy
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "tools" / "lessons"
LESSONS = ROOT / "lessons"
FIGURES = ROOT / "figures"
CELL_TIMEOUT = 1800  # seconds per cell in a full run (the longest trainings)

__all__ = ["build_notebook", "execute_notebook", "lesson_sources", "main"]


def lesson_sources(prefixes=()):
    """Source files ``tools/lessons/NN_*.py`` whose name starts with one of ``prefixes`` (all if empty)."""
    files = sorted(p for p in SOURCES.glob("[0-9][0-9]_*.py"))
    if prefixes:
        files = [p for p in files if any(p.stem.startswith(pre) for pre in prefixes)]
    return files


def build_notebook(source):
    """The notebook (no outputs) described by one source file's ``CELLS``."""
    sys.path.insert(0, str(SOURCES))
    try:
        cells = runpy.run_path(str(source))["CELLS"]
    finally:
        sys.path.remove(str(SOURCES))
    nb = nbformat.v4.new_notebook()
    for kind, text in cells:
        cell = nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    # Stable cell ids, so a rebuild does not change every line of the file.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{source.stem[:2]}-{i:03d}"
    return nb


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

    The kernel runs in ``lessons/``; the repository root goes first on
    PYTHONPATH so the lessons import this checkout's minflow.
    """
    env = dict(os.environ)
    env.pop("MINFLOW_FAST", None)
    # One BLAS thread unless the caller says otherwise: on a busy machine a
    # multi-threaded BLAS that spins waiting for its threads can run a lesson
    # many times slower (measured here: lesson 04 in 39 s with 1 thread, over
    # 20 minutes with 2 threads on a machine shared with other jobs).
    env.setdefault("OMP_NUM_THREADS", "1")
    if fast:
        env["MINFLOW_FAST"] = "1"
    env["MINFLOW_FIGDIR"] = str(figdir)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def execute_notebook(nb, fast=False, figdir=FIGURES, timeout=CELL_TIMEOUT, after=None):
    """Run ``nb`` in place, top to bottom, in ``lessons/``; returns the seconds it took.

    Args:
        nb: a notebook (outputs are stored in it).
        fast: run with MINFLOW_FAST=1.
        figdir: MINFLOW_FIGDIR, where the lesson writes its figures.
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


def _sources_of(nb):
    return [(c.cell_type, c.source) for c in nb.cells]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson number prefixes, e.g. 01 03 (default: all)")
    parser.add_argument("--execute", action="store_true", help="run each notebook and store its outputs")
    parser.add_argument("--fast", action="store_true", help="with --execute: fast mode, figures to a temp dir")
    parser.add_argument("--check", action="store_true", help="only check that notebooks match their sources")
    args = parser.parse_args(argv)
    sources = lesson_sources(args.lessons)
    if not sources:
        parser.error(f"no lesson source matches {args.lessons} in {SOURCES}")
    stale = []
    for source in sources:
        target = LESSONS / f"{source.stem}.ipynb"
        nb = build_notebook(source)
        if args.check:
            if not target.exists() or _sources_of(nbformat.read(target, as_version=4)) != _sources_of(nb):
                stale.append(target.name)
            continue
        if args.execute:
            figdir = Path(tempfile.mkdtemp(prefix="minflow-figs-")) if args.fast else FIGURES
            seconds = execute_notebook(nb, fast=args.fast, figdir=figdir)
            print(f"{target.name}: ran in {seconds:.1f} s ({'fast' if args.fast else 'full'} mode)")
            if args.fast:
                continue  # a fast run never overwrites the committed notebook
        nbformat.validate(nb)
        LESSONS.mkdir(exist_ok=True)
        nbformat.write(nb, target)
        print(f"wrote {target.relative_to(ROOT)}")
    if stale:
        print("out of date (run tools/build_lessons.py --execute):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
