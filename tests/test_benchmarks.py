"""Tests for benchmarks/: the comparison scripts run and print their tables; the PyTorch models are the same models.

No timing is asserted (timings depend on the machine and its load); these
tests check that the scripts run end to end at tiny sizes, that their JSON
has the documented keys, and, where PyTorch is installed (an optional
dependency of the benchmarks only), that each PyTorch model computes the
same log-density as minflow's with the same parameters.
"""

import json
import os
import subprocess
import sys

import numpy
import pytest
from helpers import randomize_params

from minflow.data.energy import ENERGY_TARGETS, get_energy
from minflow.zoo import realnvp_2d
from minflow.zoo.d8 import d8
from minflow.zoo.p2 import planar_2d
from minflow.zoo.tarflow import TARFLOW_PARAMETERS, tarflow_digits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "benchmarks")


def _has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _run(script, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, os.path.join(BENCHMARKS, script), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


TINY = ["--repeats", "2", "--warmup", "1", "--sample-repeats", "1", "--sample-n", "20", "--memory-steps", "1"]


def test_compare_runs_r2_and_prints_its_table(tmp_path):
    path = tmp_path / "compare.json"
    only = [] if _has_torch() else ["--only", "minflow"]
    stdout = _run("compare.py", "--model", "r2", *TINY, *only, "--json", str(path))
    assert "| model | implementation | step ms |" in stdout
    report = json.loads(path.read_text())
    row = report["results"]["r2"]
    for f in ["minflow", "torch"] if _has_torch() else ["minflow"]:
        assert row[f"{f}_step_s"] > 0 and row[f"{f}_sample_s"] > 0 and row[f"{f}_peak_mb"] >= 0
        assert f"| r2 | {f} |" in stdout
    assert row["minflow_peak_mb"] > 0 and row["minflow_peak_rss_mb"] >= 0
    if _has_torch():
        assert row["ratio_step"] > 0 and row["ratio_sample"] > 0 and row["ratio_peak_mb"] > 0
        assert row["torch_peak_mb"] > 0  # the profiler saw the step's tensors
        assert "| r2 | ratio minflow / torch |" in stdout
    assert "machine" in report and "load_average_before" in report


def test_compare_d8_measures_memory_by_inversion_beside_the_cached_path(tmp_path):
    path = tmp_path / "d8.json"
    stdout = _run("compare.py", "--model", "d8", "--only", "minflow", *TINY, "--json", str(path))
    row = json.loads(path.read_text())["results"]["d8"]
    assert "torch_step_s" not in row and "ratio_step" not in row
    assert row["minflow_step_s"] > 0 and row["minflow_invert_step_s"] > 0
    # a real difference, far above rounding: inversion keeps one layer's activations instead of all
    assert row["minflow_invert_peak_mb"] < 0.6 * row["minflow_peak_mb"]
    assert "| d8 | minflow_invert |" in stdout


def test_compare_p2_cases_train_and_sample():
    sys.path.insert(0, BENCHMARKS)
    try:
        import compare
    finally:
        sys.path.remove(BENCHMARKS)
    for name in compare.IMPLEMENTATIONS["p2"] if _has_torch() else ["minflow"]:
        make_batch, step, sample = compare.CASES[("p2", name)]()
        step(make_batch())
        assert tuple(sample(5).shape) == (5, 2)


def test_quality_for_time_runs_and_prints_its_table(tmp_path):
    if not _has_torch():
        pytest.skip("PyTorch is not installed (pip install -r benchmarks/requirements.txt)")
    path = tmp_path / "qft.json"
    stdout = _run(
        "quality_for_time.py",
        "--model",
        "r2",
        "--steps",
        "20",
        "--eval-every",
        "10",
        "--test-n",
        "1000",
        "--json",
        str(path),
    )
    assert "| r2 |" in stdout
    r2 = json.loads(path.read_text())["r2"]
    assert r2["torch_steps"] == 20 and r2["torch_seconds"] > 0
    assert numpy.isfinite(r2["target"]) and numpy.isfinite(r2["minflow_final"])


def test_float64_check_reports_both_dtypes(tmp_path):
    path = tmp_path / "f64.json"
    stdout = _run("quality_for_time.py", "--float64-check", "--steps", "5", "--test-n", "1000", "--json", str(path))
    assert "float32" in stdout and "float64" in stdout
    r = json.loads(path.read_text())["r2_float32_vs_float64"]
    # after 5 steps from the same seed and data the two precisions agree to float32 rounding
    assert abs(r["gap_nats"]) < 1e-4
    assert r["gap_nats"] == pytest.approx(r["float32"]["test_nll"] - r["float64"]["test_nll"])


# -- the PyTorch models are the same models ---------------------------------------------------


@pytest.fixture
def torch_models():
    torch = pytest.importorskip("torch", reason="PyTorch is an optional dependency of the benchmarks")
    sys.path.insert(0, BENCHMARKS)
    import torch_models

    torch.set_default_dtype(torch.float64)
    yield torch, torch_models
    torch.set_default_dtype(torch.float32)
    sys.path.remove(BENCHMARKS)


def test_torch_r2_has_the_same_log_prob(torch_models, rng):
    torch, tm = torch_models
    model = randomize_params(realnvp_2d(dtype=numpy.float64), numpy.random.default_rng(0), 0.3)
    twin = tm.load_minflow_params(tm.TorchR2(), model)
    x = rng.standard_normal((7, 2))
    assert sum(p.numel() for p in twin.parameters()) == model.num_params() == 35_344
    numpy.testing.assert_allclose(twin.log_prob(torch.from_numpy(x)).detach().numpy(), model.log_prob(x), rtol=1e-12)


def test_torch_d8_has_the_same_log_prob(torch_models, rng):
    torch, tm = torch_models
    model = randomize_params(d8(size=4, hidden=5, dtype=numpy.float64), numpy.random.default_rng(0), 0.2)
    twin = tm.load_minflow_params(tm.TorchD8(size=4, hidden=5), model)
    v = rng.uniform(0.05, 0.95, size=(3, 1, 4, 4))
    log_q = model.log_prob(v)
    numpy.testing.assert_allclose(twin.log_prob(torch.from_numpy(v)).detach().numpy(), log_q, rtol=1e-10)
    assert sum(p.numel() for p in tm.TorchD8().parameters()) == 384_962


@pytest.mark.parametrize("patch", [1, 2])
def test_torch_tarflow_has_the_same_log_prob(patch, torch_models, rng):
    torch, tm = torch_models
    config = {"patch": patch, "blocks": 3, "hidden": 8, "depth": 2, "n_heads": 2, "mlp_ratio": 2}
    model = randomize_params(tarflow_digits(**config, dtype=numpy.float64), numpy.random.default_rng(0), 0.3)
    twin = tm.load_minflow_params(tm.TorchTarFlow(**config), model)
    v = rng.uniform(0.05, 0.95, size=(3, 1, 8, 8))
    numpy.testing.assert_allclose(
        twin.log_prob(torch.from_numpy(v)).detach().numpy(), model.log_prob(v), rtol=1e-10, atol=0
    )
    assert sum(p.numel() for p in tm.TorchTarFlow().parameters()) == TARFLOW_PARAMETERS


def test_torch_tarflow_inverts_its_own_log_prob_pass(torch_models):
    torch, tm = torch_models
    torch.manual_seed(0)
    twin = tm.TorchTarFlow(blocks=2, hidden=8, n_heads=2)
    for block in twin.blocks:
        torch.nn.init.normal_(block.head.weight, std=0.3)
    z = torch.randn(2, 16, 4, dtype=torch.float64)
    block = twin.blocks[0]
    numpy.testing.assert_allclose(block(block.inverse(z))[0].detach().numpy(), z.numpy(), atol=1e-10)


def test_tarflow_benchmark_runs_and_writes_its_json(tmp_path):
    path = tmp_path / "tarflow.json"
    stdout = _run(
        "tarflow_digits.py",
        "--epochs",
        "1",
        "--train-size",
        "64",
        "--blocks",
        "1",
        "--dim",
        "8",
        "--eval-draws",
        "1",
        "--json",
        str(path),
    )
    assert "epoch 1: train" in stdout
    result = json.loads(path.read_text())
    assert result["curve"]["epoch"] == [1] and len(result["curve"]["test_bpd"]) == 1
    assert result["parameters"] < TARFLOW_PARAMETERS and result["sample_64_seconds"] > 0


def test_tarflow_speed_benchmark_runs_and_writes_its_json(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is an optional dependency of the benchmarks")
    path = tmp_path / "speed.json"
    stdout = _run("tarflow_speed.py", "--steps", "1", "--json", str(path))
    assert "ratio" in stdout
    result = json.loads(path.read_text())
    assert result["minflow_step_s"] > 0 and result["torch_step_s"] > 0 and result["ratio_step"] > 0
    assert result["parameters"] == TARFLOW_PARAMETERS


def test_tarflow_noise_benchmark_runs_and_writes_its_json_and_figure(tmp_path):
    path, figure = tmp_path / "noise.json", tmp_path / "noise.png"
    tiny = ["--epochs", "1", "--train-size", "64", "--blocks", "1", "--dim", "8", "--eval-draws", "1"]
    _run("tarflow_noise.py", *tiny, "--sigmas", "0", "0.3", "--json", str(path), "--figure", str(figure))
    runs = json.loads(path.read_text())["runs"]
    assert [r["sigma"] for r in runs] == [0.0, 0.3]
    assert runs[0]["noisy_test_bpd"] is None and runs[1]["noisy_test_bpd"] > 0
    assert set(runs[1]["nearest_train_rms"]) == {"raw", "denoised"}
    assert figure.stat().st_size > 1000


def test_torch_p2_and_energies_are_the_same(torch_models, rng):
    torch, tm = torch_models
    model = planar_2d(32, dtype=numpy.float64, seed=3)
    twin = tm.load_minflow_params(tm.TorchP2(32), model)
    torch.manual_seed(0)
    z = torch.randn(9, 2)  # the base draw TorchP2 makes after the same seed
    torch.manual_seed(0)
    x_torch, log_q_torch = twin.sample_and_log_prob(9)
    x, logdet_inv = model.flow.inverse(z.numpy())
    log_q = model.base.log_prob(z.numpy()) - logdet_inv
    numpy.testing.assert_allclose(x_torch.detach().numpy(), x, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(log_q_torch.detach().numpy(), log_q, rtol=1e-12)
    for name in ENERGY_TARGETS:
        numpy.testing.assert_allclose(
            tm.torch_energy(name)(torch.from_numpy(x)).numpy(), get_energy(name).energy(x), rtol=1e-12, atol=1e-12
        )


def test_busy_runs_both_policies_beside_a_busy_process(tmp_path):
    """busy.py at a tiny size: four cells per model, their ratios, and no busy process left behind."""
    path = tmp_path / "busy.json"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, os.path.join(BENCHMARKS, "busy.py"), "--parts", "steps", "--models", "p2", "r2"]
        + ["--steps-scale", "0.02", "--json", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    if out.returncode == 1 and "unset the caps" in out.stdout:
        pytest.skip(out.stdout.strip())  # one core: the library's default is already one thread
    assert out.returncode == 0, out.stderr
    report = json.loads(path.read_text())
    assert report["library_threads"] >= 2 and report["policy_threads"] == 1
    for model in ("p2", "r2"):
        row = report["parts"]["steps"][model]
        cells = row["ms_per_step"]
        assert {c: set(cells[c]) for c in cells} == {c: {"default", "policy"} for c in ("idle", "busy")}
        assert all(v > 0 for c in cells.values() for v in c.values())
        assert row["policy_busy_over_idle"] == pytest.approx(cells["busy"]["policy"] / cells["idle"]["policy"])
    assert "| r2 |" in out.stdout


# -- the JAX models are the same models ---------------------------------------------------


@pytest.fixture
def jax_models():
    jax = pytest.importorskip("jax", reason="JAX is an optional dependency of the benchmarks")
    pytest.importorskip("optax", reason="optax is an optional dependency of the benchmarks")
    jax.config.update("jax_enable_x64", True)
    sys.path.insert(0, BENCHMARKS)
    import jax_models

    yield jax, jax_models
    sys.path.remove(BENCHMARKS)
    jax.config.update("jax_enable_x64", False)


def test_jax_r2_has_the_same_log_prob_and_samples(jax_models, rng):
    jax, jm = jax_models
    model = randomize_params(realnvp_2d(dtype=numpy.float64), numpy.random.default_rng(0), 0.3)
    params = jm.params_from_minflow("r2", model)
    x = rng.standard_normal((7, 2))
    numpy.testing.assert_allclose(numpy.asarray(jm.r2_log_prob(params, x)), model.log_prob(x), rtol=1e-12)
    # the sampling direction: the same base draw through both inverses
    key = jax.random.PRNGKey(0)
    z = numpy.asarray(jax.random.normal(key, (5, 2), dtype=numpy.float64))
    numpy.testing.assert_allclose(numpy.asarray(jm.r2_sample(params, key, 5)), model.flow.inverse(z)[0], rtol=1e-12)


def test_jax_d8_has_the_same_log_prob_and_samples(jax_models, rng):
    jax, jm = jax_models
    model = randomize_params(d8(size=4, hidden=5, dtype=numpy.float64), numpy.random.default_rng(0), 0.2)
    params = jm.params_from_minflow("d8", model)
    v = rng.uniform(0.05, 0.95, size=(3, 1, 4, 4))
    numpy.testing.assert_allclose(numpy.asarray(jm.d8_log_prob(params, v)), model.log_prob(v), rtol=1e-10)
    key = jax.random.PRNGKey(0)
    z = numpy.asarray(jax.random.normal(key, (3, 4, 2, 2), dtype=numpy.float64))
    numpy.testing.assert_allclose(
        numpy.asarray(jm.d8_sample(params, key, 3, size=4)), model.flow.inverse(z)[0], rtol=1e-10
    )
    full = jm.params_from_minflow("d8", d8(dtype=numpy.float64))
    assert sum(a.size for a in jax.tree_util.tree_leaves(full)) == 384_962


def test_jax_p2_and_energies_are_the_same(jax_models, rng):
    _, jm = jax_models
    model = planar_2d(32, dtype=numpy.float64, seed=3)
    params = jm.params_from_minflow("p2", model)
    z = rng.standard_normal((9, 2))
    x_jax, log_q_jax = jm.p2_sample_and_log_q(params, z)
    x, logdet_inv = model.flow.inverse(z)
    numpy.testing.assert_allclose(numpy.asarray(x_jax), x, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(numpy.asarray(log_q_jax), model.base.log_prob(z) - logdet_inv, rtol=1e-12)
    for name in ENERGY_TARGETS:
        numpy.testing.assert_allclose(
            numpy.asarray(jm.jax_energy(name)(x)), get_energy(name).energy(x), rtol=1e-12, atol=1e-12
        )


def test_jax_training_steps_follow_minflow_on_the_same_batches(jax_models):
    """A few float64 Adam steps of the JAX twin and of minflow from the same weights on the same batches agree."""
    _, jm = jax_models
    from minflow.optim import Adam

    model = realnvp_2d(dtype=numpy.float64, seed=0)
    params = jm.params_from_minflow("r2", model)
    step, state = jm.train_step(lambda p, x: -jm.r2_log_prob(p, x).mean(), params, 1e-3)
    optimizer = Adam(model.params, model.grads, lr=1e-3)
    batches = numpy.random.default_rng(0).standard_normal((3, 64, 2))
    for x in batches:
        params, state, loss = step(params, state, x)
        model.zero_grads()
        ours = model.nll_and_backward(x)
        optimizer.step()
        numpy.testing.assert_allclose(float(loss), float(ours), rtol=1e-10)
    numpy.testing.assert_allclose(
        numpy.asarray(jm.r2_log_prob(params, batches[0])), model.log_prob(batches[0]), rtol=1e-8
    )


def test_compare_jax_runs_and_prints_its_table(tmp_path):
    pytest.importorskip("jax", reason="JAX is an optional dependency of the benchmarks")
    pytest.importorskip("optax", reason="optax is an optional dependency of the benchmarks")
    path = tmp_path / "jax.json"
    torch_flag = [] if _has_torch() else ["--no-torch"]
    args = ["--repeats", "2", "--warmup", "1", "--sample-repeats", "1", "--sample-n", "20"]
    stdout = _run("compare_jax.py", "--model", "p2", *args, *torch_flag, "--json", str(path))
    row = json.loads(path.read_text())["results"]["p2"]
    assert row["minflow_step_s"] > 0 and row["jax_step_s"] > 0 and row["ratio_step_jax"] > 0
    assert "| p2 | ratio minflow / jax |" in stdout


def test_profile_steps_prints_a_table_whose_rows_add_up_to_the_step():
    stdout = _run("profile_steps.py", "--case", "p2", "--steps", "3", "--cprofile")
    assert "| where | ms per call | share |" in stdout and "| Planar.inverse_backward |" in stdout
    assert "| Adam.step |" in stdout and "batch of one" in stdout and "tottime" in stdout
    table = stdout.split("| where | ms per call | share |")[1].split("the same with a batch of one")[0]
    shares = [float(line.split("|")[3].strip().rstrip("%")) for line in table.splitlines() if line.startswith("| ")]
    assert sum(shares) == pytest.approx(100, abs=0.5)  # every millisecond is in one row


def test_profile_steps_has_a_tarflow_case_whose_rows_add_up():
    stdout = _run("profile_steps.py", "--case", "tarflow", "--steps", "1")
    table = stdout.split("| where | ms per call | share |")[1].split("the same with a batch of one")[0]
    assert "| CausalSelfAttention.backward |" in table and "| GELU.forward |" in table
    shares = [float(line.split("|")[3].strip().rstrip("%")) for line in table.splitlines() if line.startswith("| ")]
    assert sum(shares) == pytest.approx(100, abs=0.5)


def test_before_after_times_a_copy_of_minflow_against_the_tree(tmp_path):
    import shutil

    shutil.copytree(os.path.join(ROOT, "minflow"), tmp_path / "minflow_before")
    path = tmp_path / "before_after.json"
    stdout = _run(
        "before_after.py",
        "--baseline",
        str(tmp_path),
        "--cases",
        "p2",
        "r2_sample",
        "--rounds",
        "2",
        "--json",
        str(path),
    )
    report = json.loads(path.read_text())
    for case in ("p2", "r2_sample"):
        assert report[case]["rounds"] == 2 and report[case]["before_s"] > 0 and report[case]["ratio"] > 0
        assert f"{case}: before" in stdout
