"""Tests for ``python -m minflow demo`` (minflow/commands/demo.py).

A 20-step run on moons, with 2,000 held-out samples instead of 10^5, must
write the four figures and a JSON whose gap is test_nll - entropy; the
held-out NLL must be the mean -log q; bad option values must stop with exit
code 2 and a message that names the option.
"""

import json
import math

import matplotlib.image
import numpy
import pytest

from minflow.__main__ import main
from minflow.backend import make_rng
from minflow.commands.demo import FIGURE_KINDS, TEST_SEED, evaluate_nll
from minflow.data.toy2d import get_toy
from minflow.zoo import realnvp_2d

JSON_KEYS = {"test_nll", "entropy", "gap", "steps", "seconds", "dataset", "seed", "ms_per_step"}


def test_demo_moons_writes_json_and_figures(tmp_path, capsys):
    out, result = tmp_path / "figs", tmp_path / "x.json"
    code = main(
        ["demo", "--dataset", "moons", "--steps", "20", "--out", str(out), "--json", str(result), "--no-progress",
         "--test-samples", "2000"]
    )  # fmt: skip
    assert code == 0
    data = json.loads(result.read_text())
    assert JSON_KEYS <= set(data)
    assert data["dataset"] == "moons" and data["steps"] == 20 and data["seed"] == 0
    assert data["entropy"] == pytest.approx(2.3936)
    assert data["gap"] == pytest.approx(data["test_nll"] - data["entropy"], abs=1e-12)
    assert 2.4 < data["test_nll"] < 4.5  # 20 steps: above H(moons), at most the untrained N(0, I) fit
    assert data["ms_per_step"] == pytest.approx(1000 * data["seconds"] / 20)
    for kind in FIGURE_KINDS:
        path = out / f"demo_moons_{kind}.png"
        assert matplotlib.image.imread(path).shape[0] > 100, path
    printed = capsys.readouterr().out
    assert f"{data['test_nll']:.4f}" in printed and f"{data['gap']:.4f}" in printed


def test_demo_sample_only_dataset_reports_nll_without_entropy(tmp_path):
    result = tmp_path / "s.json"
    code = main(
        ["demo", "--dataset", "spirals", "--steps", "5", "--no-figures", "--json", str(result), "--no-progress",
         "--test-samples", "500"]
    )  # fmt: skip
    assert code == 0
    data = json.loads(result.read_text())
    assert data["entropy"] is None and data["gap"] is None
    assert math.isfinite(data["test_nll"])
    assert not (tmp_path / "figures").exists()


def test_demo_checkpoint_holds_the_trained_model(tmp_path):
    from minflow.checkpoint import load_checkpoint

    ckpt = tmp_path / "r2.npz"
    args = ["demo", "--steps", "5", "--no-figures", "--no-progress", "--test-samples", "500", "--checkpoint", str(ckpt)]
    assert main(args + ["--json", str(tmp_path / "r.json")]) == 0
    model = realnvp_2d(seed=1)
    assert load_checkpoint(ckpt, model)["dataset"] == "moons"
    nll = evaluate_nll(model, get_toy("moons"), 500)
    assert nll == pytest.approx(json.loads((tmp_path / "r.json").read_text())["test_nll"], abs=1e-6)


def test_evaluate_nll_is_mean_negative_log_density_of_held_out_samples():
    # The untrained R2 is the identity over N(0, I): -log q(x) = |x|^2 / 2 + log(2 pi).
    toy = get_toy("moons")
    x = toy.sample(10_000, make_rng(TEST_SEED), numpy.float32)  # the held-out stream: one batch of 10,000
    expected = float(numpy.mean(0.5 * (x.astype(numpy.float64) ** 2).sum(axis=1) + math.log(2 * math.pi)))
    assert evaluate_nll(realnvp_2d(seed=0), toy, 10_000) == pytest.approx(expected, rel=1e-6)


def test_evaluate_nll_batches_agree_with_one_pass():
    model = realnvp_2d(n_layers=2, seed=0)
    toy = get_toy("gaussians8")
    # 25,000 held-out points come in batches of 10,000, 10,000 and 5,000 from one stream.
    rng = make_rng(TEST_SEED)
    x = numpy.concatenate([toy.sample(m, rng, numpy.float32) for m in (10_000, 10_000, 5_000)])
    expected = -float(numpy.mean(model.log_prob(x).astype(numpy.float64)))
    assert evaluate_nll(model, toy, 25_000) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "argument --steps: expected a positive integer; got 0"),
        (["--steps", "ten"], "argument --steps: expected a positive integer; got 'ten'"),
        (["--dataset", "foo"], "argument --dataset: invalid choice: 'foo'"),
        (["--lr=-1e-3"], "argument --lr: expected a positive number; got -0.001"),
        (["--lr", "0"], "argument --lr: expected a positive number; got 0.0"),
        (["--batch-size", "0"], "argument --batch-size: expected a positive integer; got 0"),
        (["--test-samples", "0"], "argument --test-samples: expected a positive integer; got 0"),
    ],
)
def test_demo_rejects_bad_option_with_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_demo_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ["--dataset", "--steps", "--batch-size", "--lr", "--seed", "--out", "--json", "--test-samples",
                   "--checkpoint", "--no-figures", "--no-progress"]:  # fmt: skip
        assert option in text
    for name in ["gaussians8", "checkerboard", "rings", "moons", "pinwheel", "spirals"]:
        assert name in text
    assert "default: 5000" in text


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_demo_diverging_run_is_an_error_with_exit_code_2(tmp_path, capsys):
    code = main(
        ["demo", "--steps", "30", "--lr", "1e8", "--no-progress", "--out", str(tmp_path), "--test-samples", "100"]
    )
    assert code == 2
    assert "Training diverged at step" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # no figures of a broken model


def test_demo_cfm_writes_json_and_figures(tmp_path):
    out, result = tmp_path / "figs", tmp_path / "c.json"
    code = main(
        ["demo", "--model", "cfm", "--dataset", "moons", "--steps", "20", "--ode-steps", "8", "--out", str(out),
         "--json", str(result), "--no-progress", "--test-samples", "500"]
    )  # fmt: skip
    assert code == 0
    data = json.loads(result.read_text())
    assert data["model"] == "cfm" and data["ode_steps"] == 8
    assert data["gap"] == pytest.approx(data["test_nll"] - data["entropy"], abs=1e-12)
    assert 2.4 < data["test_nll"] < 6.0  # 20 steps: above H(moons), not far from the untrained field
    for kind in FIGURE_KINDS:
        assert (out / f"demo_cfm_moons_{kind}.png").exists(), kind


@pytest.mark.parametrize("name", ["maf", "nsf", "nsf_ar"])
def test_demo_trains_the_model_named_by_model(name, tmp_path, capsys):
    from minflow import zoo
    from minflow.checkpoint import load_checkpoint
    from minflow.commands.demo import DEMO_MODELS

    result, ckpt = tmp_path / "r.json", tmp_path / "m.npz"
    argv = ["demo", "--model", name, "--steps", "5", "--no-progress", "--test-samples", "500", "--no-figures"]
    assert main(argv + ["--json", str(result), "--checkpoint", str(ckpt)]) == 0
    data = json.loads(result.read_text())
    assert data["model"] == name and data["steps"] == 5
    assert 2.39 < data["test_nll"] < 6.0  # 5 steps: above H(moons), near the untrained fit
    model = getattr(zoo, DEMO_MODELS[name][0])(seed=3)
    assert load_checkpoint(ckpt, model)["model"] == name  # the checkpoint holds this architecture's weights
    assert evaluate_nll(model, get_toy("moons"), 500) == pytest.approx(data["test_nll"], abs=1e-6)
    assert f"{model.num_params():,} parameters" in capsys.readouterr().out


def test_demo_draws_the_figures_of_an_autoregressive_model(tmp_path):
    out = tmp_path / "figs"
    argv = ["demo", "--model", "maf", "--steps", "3", "--no-progress", "--test-samples", "500", "--out", str(out)]
    assert main(argv) == 0
    for kind in FIGURE_KINDS:
        assert matplotlib.image.imread(out / f"demo_maf_moons_{kind}.png").shape[0] > 100


def test_demo_rejects_an_unknown_model(capsys):
    with pytest.raises(SystemExit) as err:
        main(["demo", "--model", "glow"])
    assert err.value.code == 2
    assert "--model" in capsys.readouterr().err
