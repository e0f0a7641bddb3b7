"""Run every lesson notebook in fast mode, and prove that its exercise checks work.

Each ``lessons/NN_*.ipynb`` is executed top to bottom with nbclient, in
``lessons/``, with MINFLOW_FAST=1 and MINFLOW_FIGDIR pointing at a temporary
folder (so the committed, full-quality figures are never overwritten); a cell
that raises fails the test. Then, in the same kernel, every
``check_exercise_k`` the notebook defines is called three ways: with the
notebook's own ``solution_k`` (must pass), with ``None`` (must say "not
attempted", not fail) and with each typical wrong answer listed in
``WRONG_ANSWERS`` below (must raise AssertionError).

The kernel is the native ipykernel of the interpreter running pytest (see
``tools/build_lessons.py``), so no kernelspec has to be installed; a test
checks that the kernel really runs this interpreter.

Deselect with ``pytest -m "not lessons"`` (the nine lessons take a few minutes on 2 cores).
"""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.lessons

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell; fast mode needs a few
FAST_BUDGET = 30  # seconds per lesson in fast mode on 2 cores (the lessons' rule)
# A shared or loaded machine can be several times slower than an idle one; the
# test fails only on a clear regression, and reports the measured time.
FAST_LIMIT = 3 * FAST_BUDGET

# Typical wrong answers for each exercise, as source code evaluated in the
# lesson's kernel (where its imports and variables exist). Every check the
# notebook defines must appear here, and must reject each of these.
WRONG_ANSWERS = {
    "01_change_of_variables": {
        1: [
            "lambda x: -0.5 * np.arcsinh(x) ** 2 - 0.5 * math.log(2 * math.pi)",  # no log-det
            "lambda x: -0.5 * np.arcsinh(x) ** 2 - 0.5 * math.log(2 * math.pi) + 0.5 * np.log1p(x**2)",  # sign
        ],
        2: [
            "-1 / 9 - math.log(2 * math.pi)",  # no log-det
            "-1 / 9 - math.log(2 * math.pi) + math.log(3)",  # log-det of the wrong direction
            "-1.0 - math.log(2 * math.pi) - math.log(3)",  # log N evaluated at x
        ],
        3: [
            "lambda z: np.log1p(3 * (z**2).sum(axis=1) / 4)",  # radial stretch only
            "lambda z: np.log1p((z**2).sum(axis=1) / 4) + np.log1p(3 * (z**2).sum(axis=1) / 4) + np.log(1.3)",
        ],
    },
    "02_planar_and_radial_flows": {
        1: [
            "math.log(abs(1 + EX1['w'] @ EX1['u']))",  # no tanh'
            "math.log(abs(1 + math.tanh(EX1['w'] @ EX1['z'] + EX1['b']) * (EX1['w'] @ EX1['u'])))",  # tanh for tanh'
        ],
        2: ["EX2['u']", "np.array([-3.0, -0.95141])"],  # unconstrained; the wrong component moved
        3: [
            "lambda r, alpha, beta, dim: dim * np.log(1 + beta / (alpha + r))",  # D tangential factors
            "lambda r, alpha, beta, dim: dim * np.log(1 + beta / (alpha + r)) + 0 * r",
            "lambda r, alpha, beta, dim: (dim - 1) * np.log(1 + beta / (alpha + r)) + np.log(1 + beta / (alpha + r))",
        ],
    },
    "03_coupling_layers": {
        1: [
            "lambda z: (solution_1(z)[0], -solution_1(z)[1])",  # log-det sign
            "lambda z: (z.copy(), solution_1(z)[1])",  # x_b not inverted
            "layer_ex.forward",  # the forward pass instead of the inverse
        ],
        2: ["1", "2", "4"],
        3: ["1 / math.sqrt(2 * math.pi)", "1.0", "1 / math.pi"],
    },
    "04_backprop_by_hand": {
        1: [
            "lambda ds, tanh_s: ds * tanh_s",  # no sum over the batch
            "lambda ds, tanh_s: ds.sum(axis=0)",  # forgot ds/dscale = tanh
        ],
        2: [
            "lambda dx_b, x_b, dlogdet: -dx_b * x_b",  # no log-det term
            "lambda dx_b, x_b, dlogdet: -dx_b * x_b + dlogdet[:, None]",  # log-det sign
            "lambda dx_b, x_b, dlogdet: dx_b * x_b - dlogdet[:, None]",  # first-term sign
        ],
        3: [
            "lambda dz_b, dlogdet, x_b, h: dz_b * x_b * _sigmoid(h + 2) * (1 - _sigmoid(h + 2))",  # no log-det
            "lambda dz_b, dlogdet, x_b, h: (dz_b * x_b + dlogdet[:, None]) * _sigmoid(h + 2) * (1 - _sigmoid(h + 2))",
        ],
    },
    "05_glow_layers": {
        1: [
            "lambda x: (-0.5 * np.log(x.var(axis=0)), -x.mean(axis=0))",  # statistics per pixel, not per channel
            "lambda x: (-0.5 * np.log(x.var(axis=(0, 2, 3))), np.zeros(4))",  # no bias
            "lambda x: (-np.log(x.var(axis=(0, 2, 3))), -x.mean(axis=(0, 2, 3)))",  # divides by the variance
        ],
        2: ["np.linalg.slogdet(W_EX)[1]", "3 * 256 * np.linalg.slogdet(W_EX)[1]"],
        3: [
            "lambda layer: np.log(np.abs(np.diag(layer.params['U']))).sum()",  # U's stored diagonal is zero
            "lambda layer: layer.params['log_s'].mean()",
        ],
    },
    "06_images": {
        1: [
            "-60 / (64 * math.log(2))",  # no bin width
            "-(60 - 64 * math.log(17)) / 64",  # nats, not bits
            "-(60 + 64 * math.log(17)) / (64 * math.log(2))",  # sign of D ln k
        ],
        2: ["(1, 1, 1)", "(2, 3, 2)"],
        3: [
            "lambda v, a: -(np.log(a + (1 - 2 * a) * v) + np.log1p(-(a + (1 - 2 * a) * v))).sum(axis=(1, 2, 3))",
            "lambda v, a: -solution_3(v, a)",
        ],
    },
    "07_sampling_and_latent_space": {
        1: ["64", "0.7 * 64"],
        2: ["2", "0.25"],
        3: ["lambda z_a, z_b, t: (1 - t) * z_a + t * z_b", "lambda z_a, z_b, t: z_a"],
    },
    "08_numerics": {
        1: ["1 / (1 + math.exp(-2)) * (1 - 1 / (1 + math.exp(-2)))", "1 / (1 + math.exp(-2))"],
        2: ["16", "4"],
        3: ["12.8 / 64", "12.8 / math.log(2)"],
    },
    "09_gpu": {
        1: ["'a'", "'c'", "'d'"],
        2: ["40", "1000"],
        3: ["384_962 * 4", "384_962 * 8 * 4"],
    },
}


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_lessons", ROOT / "tools" / "build_lessons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = _load_builder()


def _exercise_numbers(nb):
    """The k of every ``def check_exercise_k`` in the notebook's code cells."""
    found = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            found.update(int(k) for k in re.findall(r"^def check_exercise_(\d+)\(", cell.source, re.MULTILINE))
    return sorted(found)


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
    for k in numbers:
        probes.append((f"exercise {k}: the notebook's solution passes", f"check_exercise_{k}(solution_{k})"))
        probes.append(
            (
                f"exercise {k}: None means not attempted",
                f"_out = check_exercise_{k}(None)\nassert _out is None",
            )
        )
        for wrong in WRONG_ANSWERS.get(name, {}).get(k, []):
            source = REJECT_PROBE.format(k=k, wrong=wrong)
            probes.append((f"exercise {k}: rejects {wrong[:60]}", source))
    return probes


@pytest.fixture(scope="module", params=LESSONS, ids=[p.stem for p in LESSONS])
def executed(request, tmp_path_factory):
    """Execute one lesson in fast mode, then probe its exercise checks in the same kernel."""
    from nbclient.exceptions import CellExecutionError

    path = request.param
    nb = nbformat.read(path, as_version=4)
    numbers = _exercise_numbers(nb)
    result = {"name": path.stem, "numbers": numbers, "error": None, "probes": [], "kernel_prefix": None}

    def after(run):
        result["kernel_prefix"] = run("import sys\nprint(sys.prefix, end='')")
        for label, source in _probe_exercises(path.stem, numbers):
            try:
                result["probes"].append((label, True, run(source)))
            except CellExecutionError as err:
                result["probes"].append((label, False, str(err)[-2000:]))

    figdir = tmp_path_factory.mktemp(f"figures_{path.stem[:2]}")
    try:
        result["seconds"] = builder.execute_notebook(nb, fast=True, figdir=figdir, timeout=CELL_TIMEOUT, after=after)
    except CellExecutionError as err:
        result["error"] = str(err)[-4000:]
    result["figures"] = sorted(p.name for p in figdir.iterdir())
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


def test_lesson_writes_its_figures_to_figdir(executed):
    assert executed["error"] is None, "the lesson failed; see test_lesson_runs_in_fast_mode"
    prefix = executed["name"][:2] + "_"
    assert executed["figures"], f"{executed['name']} wrote no figure to MINFLOW_FIGDIR"
    assert all(f.startswith(prefix) and f.endswith(".png") for f in executed["figures"]), executed["figures"]


def test_lesson_exercise_checks_accept_solutions_and_reject_wrong_answers(executed):
    assert executed["error"] is None, "the lesson failed; see test_lesson_runs_in_fast_mode"
    name, numbers = executed["name"], executed["numbers"]
    assert numbers, f"{name} defines no check_exercise_k function"
    listed = sorted(WRONG_ANSWERS.get(name, {}))
    assert listed == numbers, f"{name} defines checks {numbers}; WRONG_ANSWERS lists wrong answers for {listed}"
    failed = [f"{label}:\n{text}" for label, ok, text in executed["probes"] if not ok]
    assert not failed, "\n\n".join(failed)
    for label, _, text in executed["probes"]:
        if "rejects" in label:
            assert "rejected with hint:" in text and len(text.strip()) > len("rejected with hint:") + 10, (
                f"{label}: the AssertionError should carry a helpful message; got {text!r}"
            )


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_notebook_matches_its_source_and_carries_full_outputs(path):
    source = ROOT / "tools" / "lessons" / f"{path.stem}.py"
    assert source.exists(), f"{path.name} has no source {source.relative_to(ROOT)}; notebooks are built from sources"
    committed = nbformat.read(path, as_version=4)
    built = builder.build_notebook(source)
    assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in built.cells], (
        f"{path.name} differs from {source.name}: edit the source, then run "
        f"`.venv/bin/python tools/build_lessons.py {path.stem[:2]} --execute`."
    )
    code_cells = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code_cells), f"{path.name} is committed without outputs"
    setup_output = "".join(o.get("text", "") for o in code_cells[0].outputs)
    assert "full mode" in setup_output, f"{path.name} carries the outputs of a fast run; rebuild it in full mode"
