"""Tests for minflow/commands/digits.py: ``python -m minflow digits``, with tiny models so that they run in seconds."""

import json
import math

import numpy
import pytest

from minflow.__main__ import main
from minflow.commands.digits import FIGURES, nll_to_bpd

TINY = ["--hidden", "4", "--blocks", "1", "--no-progress"]


def run_digits(tmp_path, name, *options):
    out = tmp_path / name
    code = main(["digits", *TINY, "--json", str(out / "r.json"), "--out", str(out / "fig"), *options])
    assert code == 0
    return json.loads((out / "r.json").read_text()), out


def test_digits_one_epoch_on_all_training_images(tmp_path):
    results, out = run_digits(tmp_path, "full", "--epochs", "1", "--eval-draws", "2")
    assert results["steps_per_epoch"] == 24 == math.ceil(1497 / 64)  # the last partial batch is kept
    assert results["epochs"] == 1 and results["seconds"] > 0 and results["seconds_per_step"] > 0
    assert len(results["train_bpd"]) == len(results["test_bpd"]) == len(results["test_iw_bpd"]) == 1
    assert 3.0 < results["test_bpd"][0] < 6.0  # a tiny model after one epoch: between the D8 result and chaos
    assert results["test_iw_bpd"][0] < results["test_bpd"][0]
    for name in FIGURES:
        assert (out / "fig" / name).stat().st_size > 1000


def test_digits_resume_gives_the_uninterrupted_run(tmp_path):
    opts = ["--train-size", "130", "--no-figures", "--eval-draws", "2"]
    straight, _ = run_digits(tmp_path, "a", "--epochs", "3", "--checkpoint", str(tmp_path / "a.npz"), *opts)
    run_digits(tmp_path, "b", "--epochs", "2", "--checkpoint", str(tmp_path / "b.npz"), *opts)
    resumed, _ = run_digits(tmp_path, "b", "--epochs", "3", "--checkpoint", str(tmp_path / "b.npz"), "--resume", *opts)
    assert resumed["train_bpd"] == straight["train_bpd"] and resumed["test_bpd"] == straight["test_bpd"]
    assert len(straight["test_bpd"]) == 3 and straight["test_bpd"][2] < straight["test_bpd"][0]
    a, b = numpy.load(tmp_path / "a.npz"), numpy.load(tmp_path / "b.npz")
    weights = [k for k in a.files if k.startswith(("params/", "optim/"))]
    assert len(weights) > 100
    for k in weights:
        numpy.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_digits_val_keeps_the_best_epoch(tmp_path):
    ckpt = tmp_path / "c.npz"
    results, _ = run_digits(
        tmp_path,
        "v",
        "--epochs",
        "3",
        "--train-size",
        "200",
        "--val",
        "60",
        "--checkpoint",
        str(ckpt),
        "--no-figures",
        "--eval-draws",
        "2",
    )
    assert len(results["val_bpd"]) == 3
    assert results["best_epoch"] == 1 + int(numpy.argmin(results["val_bpd"]))
    assert results["best_val_bpd"] == min(results["val_bpd"])
    assert results["best_test_bpd"] == results["test_bpd"][results["best_epoch"] - 1]
    assert (tmp_path / "c.best.npz").exists()


def test_digits_resume_needs_a_checkpoint(tmp_path, capsys):
    assert main(["digits", *TINY, "--resume", "--no-figures"]) == 2
    assert "--resume needs --checkpoint" in capsys.readouterr().err


def test_digits_resume_refuses_other_settings(tmp_path, capsys):
    ckpt = str(tmp_path / "c.npz")
    run_digits(
        tmp_path, "s", "--epochs", "1", "--train-size", "64", "--checkpoint", ckpt, "--no-figures", "--eval-draws", "1"
    )
    code = main(
        ["digits", *TINY, "--epochs", "2", "--train-size", "64", "--lr", "0.01", "--checkpoint", ckpt, "--resume"]
    )
    assert code == 2
    assert "same options" in capsys.readouterr().err


def test_nll_to_bpd():
    # a uniform density on [0, 1)^64 (log q = 0) is log2(17) bits per dimension
    assert nll_to_bpd(0.0) == pytest.approx(math.log2(17))
    assert nll_to_bpd(-64 * math.log(17)) == pytest.approx(0.0)


def test_digits_spline_transformer_trains_d8_with_spline_couplings(tmp_path):
    from minflow.zoo import d8

    opts = ["--epochs", "1", "--train-size", "64", "--eval-draws", "1", "--no-figures", "--transformer", "spline"]
    results, _ = run_digits(tmp_path, "spline", *opts)
    assert results["config"]["transformer"] == "spline"
    assert results["n_params"] == d8(hidden=4, n_blocks=1, transformer="spline").num_params()
    assert results["n_params"] != d8(hidden=4, n_blocks=1).num_params()
    assert 3.0 < results["test_bpd"][0] < 8.0  # a tiny model after one epoch of 64 images


def test_digits_resume_refuses_another_transformer(tmp_path, capsys):
    ckpt = str(tmp_path / "c.npz")
    opts = ["--train-size", "64", "--checkpoint", ckpt, "--no-figures", "--eval-draws", "1"]
    run_digits(tmp_path, "a", "--epochs", "1", *opts)
    assert main(["digits", *TINY, "--epochs", "2", "--transformer", "spline", "--resume", *opts]) == 2
    err = capsys.readouterr().err
    assert "'transformer': 'affine'" in err and "same options" in err  # the settings, before any weight mismatch


def test_digits_rejects_an_unknown_transformer(capsys):
    with pytest.raises(SystemExit) as err:
        main(["digits", "--transformer", "additive"])
    assert err.value.code == 2
    assert "--transformer" in capsys.readouterr().err


def test_digits_takes_the_training_recipe_options(tmp_path):
    """D8 with the cosine schedule, AdamW and the moving average: the options reach the optimizer and the JSON."""
    opts = ["--epochs", "2", "--train-size", "128", "--no-figures", "--eval-draws", "2"]
    plain, _ = run_digits(tmp_path, "plain", *opts)
    recipe, _ = run_digits(
        tmp_path, "recipe", *opts, "--schedule", "cosine", "--warmup", "1", "--optimizer", "adamw", "--ema", "0.9"
    )
    assert recipe["config"]["schedule_epochs"] == 2 and recipe["config"]["optimizer"] == "adamw"
    assert recipe["train_bpd"] != plain["train_bpd"]
    assert recipe["final_test_bpd_without_ema"] != recipe["test_bpd"][-1]
    assert "final_test_bpd_without_ema" not in plain
