"""The lessons: every .py/.ipynb pair in sync, every lesson run in fast mode, every exercise check probed.

Each lesson is ``lessons/NN_topic.py`` (jupytext py:percent, the source)
paired with ``lessons/NN_topic.ipynb`` (the same cells with the outputs of a
full run). Any ``lessons/[0-9][0-9]_*.py`` is picked up.

- The pair holds the same cells, the committed notebook carries full-mode
  outputs and no absolute path, and an edit saved from Jupyter (through
  jupytext's contents manager, as Jupyter saves) leaves the pair in sync.
- Each lesson runs top to bottom with nbclient, in ``lessons/``, with
  MINFLOW_FAST=1 and its default figure folder (``runs/figures/``, git-ignored);
  a cell that raises fails the test, and running it must leave ``git status``
  unchanged. Then, in the same kernel, every ``check_exercise_k`` the lesson
  defines is called three ways: with the lesson's own ``solution_k`` (must
  pass), with ``None`` (must say "not attempted", not fail) and with each
  typical wrong answer listed in ``tests/lesson_wrong_answers/NN_topic.py``
  (must raise AssertionError with a hint).

The kernel is the native ipykernel of the interpreter running pytest (see
``tools/run_lessons.py``), so no kernelspec has to be installed; a test
checks that the kernel really runs this interpreter.

Deselect with ``pytest -m "not lessons"`` (the lessons take a few minutes on 2 cores).
"""

import hashlib
import importlib.util
import re
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
jupytext = pytest.importorskip("jupytext")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.lessons

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
WRONG_ANSWER_FILES = ROOT / "tests" / "lesson_wrong_answers"
DEFAULT_FIGDIR = ROOT / "runs" / "figures"  # the lessons' default, relative to lessons/: ../runs/figures
CELL_TIMEOUT = 300  # seconds per cell; fast mode needs a few
FAST_BUDGET = 30  # seconds per lesson in fast mode on 2 cores
# A shared or loaded machine can be several times slower than an idle one; the
# test fails only on a clear regression, and reports the measured time.
FAST_LIMIT = 3 * FAST_BUDGET
# An absolute path in an output would show the builder's machine to every reader.
ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:home|Users|work|tmp|root|private|var/folders)/")


def _load_runner():
    spec = importlib.util.spec_from_file_location("run_lessons", ROOT / "tools" / "run_lessons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = _load_runner()


def _wrong_answers(name):
    """The typical wrong answers of lesson ``name``: {k: [expression, ...]} (empty if it has no file)."""
    path = WRONG_ANSWER_FILES / f"{name}.py"
    return runpy.run_path(str(path))["WRONG_ANSWERS"] if path.exists() else {}


def _exercise_numbers(nb):
    """The k of every ``def check_exercise_k`` in the notebook's code cells."""
    found = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            found.update(int(k) for k in re.findall(r"^def check_exercise_(\d+)\(", cell.source, re.MULTILINE))
    return sorted(found)


def _repository_state():
    """{path: content hash} of every changed tracked file and every untracked, not ignored file (None: no git)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    listed = subprocess.run(
        ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    state = {}
    for entry in filter(None, listed.split("\0")):
        path = ROOT / entry[3:]
        state[entry[3:]] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else entry[:2]
    return state


REJECT_PROBE = """\
try:
    check_exercise_{k}({wrong})
except AssertionError as err:
    print("rejected with hint:", err)
else:
    raise RuntimeError("check_exercise_{k} accepted a wrong answer")
"""


def _probe_exercises(name, numbers):
    """Cell sources that exercise every check: solution passes, None is a no-op, wrong answers fail."""
    probes = []
    wrong_answers = _wrong_answers(name)
    for k in numbers:
        probes.append((f"exercise {k}: the lesson's solution passes", f"check_exercise_{k}(solution_{k})"))
        probes.append(
            (
                f"exercise {k}: None means not attempted",
                f"_out = check_exercise_{k}(None)\nassert _out is None",
            )
        )
        for wrong in wrong_answers.get(k, []):
            source = REJECT_PROBE.format(k=k, wrong=wrong)
            probes.append((f"exercise {k}: rejects {wrong[:60]}", source))
    return probes


# --- the pairs -----------------------------------------------------------------------------------


def test_lessons_are_found():
    assert len(SOURCES) >= 9, f"expected the lessons in {ROOT / 'lessons'}; found {[p.name for p in SOURCES]}"


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_pair_is_in_sync(source):
    problem = runner.out_of_sync(source)
    assert problem is None, problem


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_committed_notebook_carries_full_outputs_without_absolute_paths(source):
    committed = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    fix = f"run `make lesson N={source.stem[:2]}` (full mode) and commit the notebook"
    code_cells = [c for c in committed.cells if c.cell_type == "code"]
    unrun = [i for i, c in enumerate(committed.cells) if c.cell_type == "code" and c.execution_count is None]
    assert not unrun, f"{source.stem}.ipynb has code cells without outputs (cells {unrun}): {fix}"
    setup_output = "".join(o.get("text", "") for o in code_cells[0].outputs)
    assert "full mode" in setup_output, f"{source.stem}.ipynb carries the outputs of a fast run: {fix}"
    for index, cell in enumerate(committed.cells):
        for output in cell.get("outputs", []):
            text = output.get("text", "") + "".join(output.get("data", {}).get("text/plain", ""))
            found = ABSOLUTE_PATH.search(text) or (str(ROOT) in text and str(ROOT))
            assert not found, f"{source.stem}.ipynb, cell {index}, prints an absolute path: {text[:200]!r}"


@pytest.mark.parametrize("editor", ["jupyter", "text editor"])
def test_an_edit_saved_from_either_file_keeps_the_pair_in_sync(editor, tmp_path):
    """A markdown sentence changed in Jupyter (which saves both files) or in the .py (then synced)."""
    source = SOURCES[0]
    for path in (source, source.with_suffix(".ipynb"), ROOT / "lessons" / "jupytext.toml"):
        shutil.copy2(path, tmp_path / path.name)
    copy = tmp_path / source.name
    original = jupytext.read(copy.with_suffix(".ipynb"))
    index, cell = next((i, c) for i, c in enumerate(original.cells) if c.cell_type == "markdown")
    old_line = cell.source.splitlines()[0]
    new_line = old_line + " (edited for my class)"

    if editor == "jupyter":
        from jupytext import TextFileContentsManager

        manager = TextFileContentsManager(root_dir=str(tmp_path))
        model = manager.get(copy.with_suffix(".ipynb").name)
        model["content"].cells[index].source = cell.source.replace(old_line, new_line, 1)
        manager.save(model, copy.with_suffix(".ipynb").name)
    else:
        time.sleep(1.1)  # the .py is the more recent file of the pair
        text = copy.read_text()
        copy.write_text(text.replace(f"# {old_line}\n", f"# {new_line}\n", 1))
        from jupytext.cli import jupytext as jupytext_cli

        jupytext_cli(["--sync", "--quiet", str(copy)])

    from_py, from_ipynb = runner.read_pair(copy)
    assert from_py.cells[index].source.splitlines()[0] == new_line, "the edit did not reach the .py"
    assert from_ipynb.cells[index].source.splitlines()[0] == new_line, "the edit did not reach the .ipynb"
    assert runner.out_of_sync(copy) is None, runner.out_of_sync(copy)
    outputs_before = [c.get("outputs") for c in original.cells if c.cell_type == "code"]
    outputs_after = [c.get("outputs") for c in from_ipynb.cells if c.cell_type == "code"]
    assert outputs_after == outputs_before, "saving the edit lost or changed outputs"
    changed = [i for i, (a, b) in enumerate(zip(original.cells, from_ipynb.cells)) if a.source != b.source]
    assert changed == [index], f"cells {changed} changed; only cell {index} was edited"


def test_out_of_sync_pair_is_reported_with_the_fixing_command(tmp_path):
    source = SOURCES[0]
    for path in (source, source.with_suffix(".ipynb")):
        shutil.copy2(path, tmp_path / path.name)
    copy = tmp_path / source.name
    copy.write_text(copy.read_text().replace("# %% [markdown]\n", "# %% [markdown]\n# One more line.\n", 1))
    problem = runner.out_of_sync(copy)
    assert problem is not None and f"jupytext --sync lessons/{source.stem}.py" in problem, problem


# --- running them --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=SOURCES, ids=[p.stem for p in SOURCES])
def executed(request):
    """Execute one lesson in fast mode, then probe its exercise checks in the same kernel."""
    from nbclient.exceptions import CellExecutionError

    source = request.param
    nb = jupytext.read(source)
    numbers = _exercise_numbers(nb)
    result = {"name": source.stem, "numbers": numbers, "error": None, "probes": [], "kernel_prefix": None}

    def after(run):
        result["kernel_prefix"] = run("import sys\nprint(sys.prefix, end='')")
        for label, probe in _probe_exercises(source.stem, numbers):
            try:
                result["probes"].append((label, True, run(probe)))
            except CellExecutionError as err:
                result["probes"].append((label, False, str(err)[-2000:]))

    state_before = _repository_state()
    started = time.time()
    try:
        result["seconds"] = runner.execute_notebook(nb, fast=True, figdir=None, timeout=CELL_TIMEOUT, after=after)
    except CellExecutionError as err:
        result["error"] = str(err)[-4000:]
    written = (
        [p for p in DEFAULT_FIGDIR.glob("*") if p.stat().st_mtime >= started - 1] if DEFAULT_FIGDIR.exists() else []
    )
    result["figures"] = sorted(p.name for p in written)
    result["state"] = (state_before, _repository_state())
    return result


def test_lesson_runs_in_fast_mode(executed):
    assert executed["error"] is None, f"{executed['name']} failed in fast mode:\n{executed['error']}"
    assert executed["seconds"] < FAST_LIMIT, (
        f"{executed['name']} took {executed['seconds']:.1f} s in fast mode; the budget is {FAST_BUDGET} s "
        "on 2 cores. Lower its `... if FAST else ...` knobs."
    )


def test_lesson_kernel_is_this_interpreter(executed):
    assert executed["error"] is None, "the lesson failed; see test_lesson_runs_in_fast_mode"
    assert executed["kernel_prefix"] == sys.prefix, (
        f"The lesson kernel ran in {executed['kernel_prefix']!r}, not in this environment ({sys.prefix!r})."
    )


def test_lesson_writes_its_figures_to_runs_by_default(executed):
    assert executed["error"] is None, "the lesson failed; see test_lesson_runs_in_fast_mode"
    prefix = executed["name"][:2] + "_"
    mine = [f for f in executed["figures"] if f.startswith(prefix)]
    assert mine, f"{executed['name']} wrote no figure {prefix}*.png to {DEFAULT_FIGDIR.relative_to(ROOT)}/"


def test_running_a_lesson_leaves_git_status_unchanged(executed):
    before, after = executed["state"]
    if before is None:
        pytest.skip("not a git checkout")
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, (
        f"running {executed['name']} changed files git sees: {changed}. A lesson writes only under runs/ "
        "(FIGDIR defaults to ../runs/figures) unless MINFLOW_FIGDIR says otherwise."
    )


def test_lesson_exercise_checks_accept_solutions_and_reject_wrong_answers(executed):
    assert executed["error"] is None, "the lesson failed; see test_lesson_runs_in_fast_mode"
    name, numbers = executed["name"], executed["numbers"]
    assert numbers, f"{name} defines no check_exercise_k function"
    listed = sorted(_wrong_answers(name))
    assert listed == numbers, (
        f"{name} defines checks {numbers}; tests/lesson_wrong_answers/{name}.py lists wrong answers for {listed}"
    )
    failed = [f"{label}:\n{text}" for label, ok, text in executed["probes"] if not ok]
    assert not failed, "\n\n".join(failed)
    for label, _, text in executed["probes"]:
        if "rejects" in label:
            assert "rejected with hint:" in text and len(text.strip()) > len("rejected with hint:") + 10, (
                f"{label}: the AssertionError should carry a helpful message; got {text!r}"
            )
