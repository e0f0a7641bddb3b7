"""benchmarks/equal_time.py: its loops train exactly as fit_samples and fit_flow_matching do, and the script runs end to end."""

import json
import os
import subprocess
import sys

import numpy
import pytest

from minflow.continuous import ContinuousFlowModel, VelocityField, fit_flow_matching
from minflow.data.toy2d import get_toy
from minflow.train import fit_samples
from minflow.zoo import nsf_2d

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "benchmarks")


@pytest.fixture
def equal_time():
    sys.path.insert(0, BENCHMARKS)
    import equal_time

    yield equal_time
    sys.path.remove(BENCHMARKS)


def _field():
    return ContinuousFlowModel(VelocityField(2, hidden=(16, 16), n_fourier=4, rng=numpy.random.default_rng(0)))


@pytest.mark.parametrize("which", ["nsf_2d", "flow_matching"])
def test_the_timed_loop_trains_as_the_library_does(equal_time, which):
    toy = get_toy("moons")
    build = (lambda: nsf_2d(n_layers=2, hidden=(8,), seed=0)) if which == "nsf_2d" else _field
    ours, library = build(), build()
    if which == "nsf_2d":
        steps = equal_time.nll_steps(ours, toy.sample, 32, seed=3)
        fit_samples(library, toy.sample, 7, batch_size=32, lr=1e-3, seed=3, progress=False)
    else:
        steps = equal_time.flow_matching_steps(ours, toy.sample, 32, seed=3)
        fit_flow_matching(library, toy.sample, 7, batch_size=32, lr=1e-3, seed=3, progress=False)
    n, seconds, loss = equal_time.train(ours, steps, n_steps=7)
    assert n == 7 and seconds > 0 and numpy.isfinite(loss)
    for key, p in library.params.items():
        numpy.testing.assert_array_equal(ours.params[key], p)


def test_a_time_budget_stops_at_the_first_step_past_it(equal_time):
    model, toy = _field(), get_toy("moons")
    steps, seconds, _ = equal_time.train(model, equal_time.flow_matching_steps(model, toy.sample, 32, 0), budget_s=0.05)
    assert seconds > 0.05 and steps >= 1
    with pytest.raises(ValueError, match="exactly one"):
        equal_time.train(model, lambda step: 0.0)


def test_equal_time_runs_and_writes_its_json(tmp_path):
    path = tmp_path / "e.json"
    tiny = ["--nsf-steps", "5", "--test-samples", "500", "--check-samples", "100", "--ode-steps", "2"]
    out = subprocess.run(
        [sys.executable, os.path.join(BENCHMARKS, "equal_time.py"), "--dataset", "moons", *tiny, "--json", str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        timeout=300,
    )
    assert "| moons | flow_matching | 34,442 |" in out.stdout
    result = json.loads(path.read_text())
    models, budget = result["models"], result["budget_seconds"]
    assert list(models) == ["nsf_2d", "flow_matching", "realnvp_2d"]
    assert models["nsf_2d"]["steps"] == 5 and models["nsf_2d"]["train_seconds"] == budget
    for name in ("flow_matching", "realnvp_2d"):
        assert models[name]["train_seconds"] > budget and models[name]["steps"] >= 1
    for r in models.values():
        assert r["gap"] == pytest.approx(r["test_nll"] - result["entropy"]) and r["gap"] > 0
    assert abs(models["flow_matching"]["nll_2x_ode_steps_change"]) < 1.0
