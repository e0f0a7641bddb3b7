"""tools/gpu_check.sh in smoke mode (a few seconds each), on both of its paths.

Without a GPU: ``CUDA_VISIBLE_DEVICES=""`` hides any GPU, so the script
behaves as on a CPU machine whether or not one is present: it must run what
it can, say which stages or parts it skipped and why, put every file in
``$OUT``, and exit 0 where nothing that ran failed (1 where something did).
With one: ``tests/fake_cupy`` on ``PYTHONPATH`` stands in for CuPy, so the
stages take their GPU path (MINFLOW_BACKEND=cupy) on the CPU.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "gpu_check.sh")

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("timeout") is None,
    reason="tools/gpu_check.sh needs bash and coreutils' timeout",
)


def _run_check(out, **env):
    """Run the script in smoke mode with its output in ``out``; (exit status, summary.json, stdout)."""
    env = {
        **os.environ,
        "OUT": str(out),
        "PYTHON": sys.executable,
        "GPU_CHECK_SMOKE": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "MINFLOW_BACKEND": "cupy",  # the script sets each stage's backend itself
        "PYTHONPATH": "",  # no tests/fake_cupy from a run of the suite on it, unless a test asks
        **env,
    }
    proc = subprocess.run(["bash", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    with open(out / "summary.json") as f:
        return proc.returncode, json.load(f), proc.stdout + proc.stderr


def test_gpu_check_without_a_gpu_says_what_it_skipped_and_writes_to_out(tmp_path):
    out = tmp_path / "gpu-out"
    rc, summary, log = _run_check(out)
    assert rc == 0, log
    stages = {s["name"]: s for s in summary["stages"]}
    assert list(stages) == ["env", "suite", "benchmark", "digits"]
    assert summary["failed"] == [] and summary["skipped"] == ["suite"]
    assert stages["env"]["status"] == "passed"
    # the suite ran under MINFLOW_BACKEND=cupy and every test skipped itself, saying why
    assert stages["suite"]["status"] == "skipped"
    assert "no usable CuPy" in stages["suite"]["note"]
    suite = summary["suite"]
    assert suite["tests"] > 0 and suite["skipped"] == suite["tests"] and suite["failing"] == []
    assert all("MINFLOW_BACKEND=cupy but CuPy" in reason for reason in suite["skip_reasons"])
    # the benchmark's CPU rows ran; the GPU rows and both targets are named as skipped, with the reason
    assert stages["benchmark"]["status"] == "passed"
    assert "minflow-cupy and torch-cuda rows and both targets skipped: no usable CuPy" in stages["benchmark"]["note"]
    rows = summary["benchmark"]["rows"]
    assert {(r["model"], r["batch"], r["implementation"]) for r in rows} == {
        ("r2", 512, "minflow-numpy"),
        ("r2", 65_536, "minflow-numpy"),
    }
    assert all(r["seconds_per_step"] > 0 for r in rows)
    assert all(t["value"] is None and t["met"] is None for t in summary["benchmark"]["targets"].values())
    # the digits run ran on NumPy, one epoch and one more resumed from its checkpoint
    assert stages["digits"]["status"] == "passed"
    assert stages["digits"]["note"].startswith("ran on NumPy, not CuPy: no usable CuPy")
    digits = summary["digits"]
    assert digits["epochs"] == 2 and len(digits["test_bpd"]) == 2 and digits["finite"]
    assert 0 < digits["test_bpd"][-1] < 8  # bits per dimension of 17-level pixels: log2(17) = 4.09 for uniform
    # every file in $OUT, the summary naming what was skipped
    for name in ("env.txt", "suite.log", "suite.xml", "benchmark.json", "benchmark.log", "digits.log"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "digits" / "d8.npz").exists() and (out / "digits" / "digits.json").exists()
    text = (out / "summary.txt").read_text()
    assert "no stage failed; skipped: suite" in text
    assert "d8_512_speedup_cupy_vs_cpu: - (target >= 10): not measured" in text


def test_gpu_check_fails_where_a_stage_that_could_run_failed(tmp_path):
    out = tmp_path / "gpu-out"
    rc, summary, log = _run_check(
        out, GPU_CHECK_TESTS="tests/no_such_test_file.py", GPU_CHECK_STAGES="suite", GPU_CHECK_PACK="1"
    )
    assert rc == 1, log
    stages = {s["name"]: s for s in summary["stages"]}
    assert summary["failed"] == ["suite"] and stages["suite"]["status"] == "failed"
    assert "yet pytest failed" in stages["suite"]["note"]
    assert summary["skipped"] == ["benchmark", "digits"]
    assert stages["digits"]["note"] == 'not selected (GPU_CHECK_STAGES="suite")'
    # packed: the summaries beside one archive of everything else
    assert sorted(p.name for p in out.iterdir()) == ["gpu-check.tar.gz", "summary.json", "summary.txt"]


def test_gpu_check_takes_the_gpu_path_where_cupy_runs(tmp_path):
    # tests/fake_cupy stands in for CuPy on a GPU: the stages run on "cupy", nothing is skipped for want of one
    out = tmp_path / "gpu-out"
    fake = os.path.join(ROOT, "tests", "fake_cupy")
    rc, summary, log = _run_check(out, PYTHONPATH=fake, GPU_CHECK_STAGES="suite digits")
    assert rc == 0, log
    stages = {s["name"]: s for s in summary["stages"]}
    assert "CuPy: ok fake CuPy" in stages["env"]["note"]
    assert stages["suite"]["status"] == "passed" and "MINFLOW_BACKEND=cupy" in stages["suite"]["note"]
    suite = summary["suite"]
    assert suite["tests"] > 0 and suite["passed"] == suite["tests"]  # none skipped for want of CuPy
    assert stages["digits"]["status"] == "passed" and "MINFLOW_BACKEND=cupy" in stages["digits"]["note"]
    assert "NumPy" not in stages["digits"]["note"]
    assert summary["digits"]["epochs"] == 2 and summary["digits"]["finite"]
    assert summary["skipped"] == ["benchmark"]
