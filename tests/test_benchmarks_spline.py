"""benchmarks/torch_spline_models.py computes the same log-density as minflow's maf_2d, nsf_ar_2d and nsf_2d
on the same weights (float64, 1e-10), where PyTorch (a benchmark-only dependency) is installed."""

import os
import sys

import numpy
import pytest
from helpers import randomize_params

from minflow.zoo import maf_2d, nsf_2d, nsf_ar_2d

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


@pytest.fixture
def twins():
    torch = pytest.importorskip("torch", reason="PyTorch is a benchmark-only dependency (benchmarks/requirements.txt)")
    sys.path.insert(0, BENCHMARKS)
    import torch_models
    import torch_spline_models

    torch.set_default_dtype(torch.float64)
    yield torch, torch_models, torch_spline_models
    torch.set_default_dtype(torch.float32)
    sys.path.remove(BENCHMARKS)


@pytest.mark.parametrize(
    "name, build, twin_args",
    [
        ("maf_2d", maf_2d, ("maf", 20, "affine", (40, 40))),
        (
            "maf_2d softclip",
            lambda dtype: maf_2d(n_layers=8, hidden=(64, 64), scale="softclip", last_init="uniform", dtype=dtype),
            ("maf", 8, "affine", (64, 64), 8, 5.0, "softclip", "uniform"),
        ),
        ("nsf_ar_2d", nsf_ar_2d, ("maf", 5, "spline")),
        ("nsf_2d", nsf_2d, ("nsf", 6)),
    ],
)
def test_torch_twin_has_the_same_log_prob(twins, name, build, twin_args):
    torch, tm, ts = twins
    model = randomize_params(build(dtype=numpy.float64), numpy.random.default_rng(0), 0.3)
    twin = ts.TorchMAF2D(*twin_args[1:]) if twin_args[0] == "maf" else ts.TorchNSF2D(*twin_args[1:])
    tm.load_minflow_params(twin, model)
    assert sum(p.numel() for p in twin.parameters()) == model.num_params()
    x = 2.5 * numpy.random.default_rng(1).standard_normal((64, 2))  # tails included (B = 5)
    log_q = twin.log_prob(torch.from_numpy(x)).detach().numpy()
    numpy.testing.assert_allclose(log_q, model.log_prob(x), rtol=1e-10, atol=1e-10)


def test_iaf_vs_planar_step_times_both_models(tmp_path):
    import json
    import subprocess

    path = tmp_path / "s.json"
    script = os.path.join(BENCHMARKS, "iaf_vs_planar_step.py")
    subprocess.run([sys.executable, script, "--pairs", "3", "--json", str(path)], check=True, capture_output=True)
    out = json.loads(path.read_text())
    assert out["pairs"] == 3 and out["iaf_2d_ms"] > 0 and out["planar_32_ms"] > 0 and out["ratio"] > 0


def test_iaf_vs_planar_step_reads_an_optional_bound_and_refuses_other_forms():
    import argparse

    sys.path.insert(0, BENCHMARKS)
    from iaf_vs_planar_step import iaf_config

    assert iaf_config("4:32x32:8") == {"n_layers": 4, "hidden": (32, 32), "n_bins": 8}
    assert iaf_config("2:24x24:6:5") == {"n_layers": 2, "hidden": (24, 24), "n_bins": 6, "bound": 5.0}
    for bad in ("2:32x32", "2:32x32:8:5:1", "2:32x32:8:wide"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected layers:hidden:bins"):
            iaf_config(bad)
