"""Tests for minflow/commands/tarflow.py: ``python -m minflow tarflow``, with tiny models so that they run in seconds."""

import json

import numpy

from minflow.__main__ import main
from minflow.commands.tarflow import FIGURES

TINY = ["--dim", "8", "--blocks", "2", "--no-progress", "--eval-draws", "2"]


def run_tarflow(tmp_path, name, *options):
    out = tmp_path / name
    code = main(["tarflow", *TINY, "--json", str(out / "r.json"), "--out", str(out / "fig"), *options])
    assert code == 0
    return json.loads((out / "r.json").read_text()), out


def test_tarflow_one_epoch_on_all_training_images(tmp_path):
    results, out = run_tarflow(tmp_path, "full", "--epochs", "1")
    assert results["steps_per_epoch"] == 24 and results["epochs"] == 1 and results["seconds_per_step"] > 0
    assert results["n_params"] < 10_000 and results["config"]["noise"] is None
    assert len(results["train_bpd"]) == len(results["test_bpd"]) == 1
    assert 2.5 < results["test_bpd"][0] < 6.0  # a tiny model after one epoch
    assert "noisy_test_bpd" not in results and results["sample_64_seconds"] > 0
    for name in FIGURES:
        assert (out / "fig" / name).stat().st_size > 1000


def test_tarflow_noise_trains_on_noisy_images_and_reports_both_bpd(tmp_path):
    opts = ["--epochs", "2", "--train-size", "128"]
    clean, _ = run_tarflow(tmp_path, "clean", *opts, "--no-figures")
    noisy, out = run_tarflow(tmp_path, "noisy", *opts, "--noise", "0.5")
    assert noisy["config"]["noise"] == 0.5
    assert noisy["train_bpd"] != clean["train_bpd"] and noisy["test_bpd"] != clean["test_bpd"]
    # the noisy images are spread wider than the bins: their density is lower
    assert noisy["noisy_test_bpd"] > noisy["test_bpd"][-1]
    assert (out / "fig" / FIGURES[0]).stat().st_size > 1000


def test_tarflow_resume_gives_the_uninterrupted_run(tmp_path):
    opts = ["--train-size", "130", "--no-figures", "--noise", "0.3"]
    straight, _ = run_tarflow(tmp_path, "a", "--epochs", "3", "--checkpoint", str(tmp_path / "a.npz"), *opts)
    run_tarflow(tmp_path, "b", "--epochs", "2", "--checkpoint", str(tmp_path / "b.npz"), *opts)
    resumed, _ = run_tarflow(tmp_path, "b", "--epochs", "3", "--checkpoint", str(tmp_path / "b.npz"), "--resume", *opts)
    assert resumed["train_bpd"] == straight["train_bpd"] and resumed["test_bpd"] == straight["test_bpd"]
    a, b = numpy.load(tmp_path / "a.npz"), numpy.load(tmp_path / "b.npz")
    weights = [k for k in a.files if k.startswith(("params/", "optim/"))]
    assert len(weights) > 20
    for k in weights:
        numpy.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_tarflow_val_keeps_the_best_epoch(tmp_path):
    results, _ = run_tarflow(tmp_path, "v", "--epochs", "3", "--train-size", "200", "--val", "60", "--no-figures")
    assert len(results["val_bpd"]) == 3
    assert results["best_epoch"] == 1 + int(numpy.argmin(results["val_bpd"]))
    assert results["best_test_bpd"] == results["test_bpd"][results["best_epoch"] - 1]


def test_tarflow_resume_refuses_other_settings(tmp_path, capsys):
    ckpt = str(tmp_path / "c.npz")
    run_tarflow(tmp_path, "s", "--epochs", "1", "--train-size", "64", "--checkpoint", ckpt, "--no-figures")
    code = main(
        [
            "tarflow",
            *TINY,
            "--epochs",
            "2",
            "--train-size",
            "64",
            "--noise",
            "0.1",
            "--checkpoint",
            ckpt,
            "--resume",
            "--no-figures",
        ]
    )
    assert code == 2
    assert "same options" in capsys.readouterr().err
