"""Tests for minflow/commands/tarflow.py: ``python -m minflow tarflow``, with tiny models so that they run in seconds."""

import json

import numpy
import pytest

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


RECIPE = ["--schedule", "cosine", "--warmup", "1", "--lr", "3e-3", "--ema", "0.9", "--optimizer", "adamw"]


def test_tarflow_recipe_resume_gives_the_uninterrupted_run(tmp_path, monkeypatch):
    """The cosine schedule (by step count), AdamW's decay and the moving average all survive --resume."""
    import minflow.commands.digits as digits_command

    opts = ["--epochs", "3", "--train-size", "130", "--no-figures", "--weight-decay", "0.05", *RECIPE]
    straight, _ = run_tarflow(tmp_path, "a", "--checkpoint", str(tmp_path / "a.npz"), *opts)
    fit_epochs = digits_command.fit_epochs
    with monkeypatch.context() as m:  # the same run, stopped after its second epoch
        m.setattr(
            digits_command,
            "fit_epochs",
            lambda model, opt, images, epochs, *a, **k: fit_epochs(model, opt, images, 2, *a, **k),
        )
        stopped, _ = run_tarflow(tmp_path, "b", "--checkpoint", str(tmp_path / "b.npz"), *opts)
    assert stopped["epochs"] == 2
    resumed, _ = run_tarflow(tmp_path, "b", "--checkpoint", str(tmp_path / "b.npz"), "--resume", *opts)
    assert resumed["train_bpd"] == straight["train_bpd"] and resumed["test_bpd"] == straight["test_bpd"]
    assert resumed["final_test_bpd_without_ema"] == straight["final_test_bpd_without_ema"]
    assert straight["final_test_bpd_without_ema"] != straight["test_bpd"][-1]  # test_bpd is the average's
    assert straight["config"]["ema"] == 0.9 and straight["config"]["schedule_epochs"] == 3
    a, b = numpy.load(tmp_path / "a.npz"), numpy.load(tmp_path / "b.npz")
    assert any(k.startswith("optim/ema.") for k in a.files)
    for k in [k for k in a.files if k.startswith(("params/", "optim/"))]:
        numpy.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # the schedule spans --epochs: resuming for more epochs is another run
    code = main(["tarflow", *TINY, "--checkpoint", str(tmp_path / "b.npz"), "--resume", *opts[2:], "--epochs", "4"])
    assert code == 2


def test_tarflow_ema_evaluates_the_average(tmp_path):
    opts = ["--epochs", "2", "--train-size", "128", "--no-figures"]
    plain, _ = run_tarflow(tmp_path, "plain", *opts)
    averaged, _ = run_tarflow(tmp_path, "ema", *opts, "--ema", "0.9")
    assert averaged["train_bpd"] == plain["train_bpd"]  # the average never enters training
    assert averaged["final_test_bpd_without_ema"] == plain["test_bpd"][-1]  # the trained weights are the same
    assert averaged["test_bpd"] != plain["test_bpd"]


def test_tarflow_resumes_a_checkpoint_written_without_the_recipe_settings(tmp_path, monkeypatch):
    """Checkpoints from before --optimizer, --schedule, --warmup and --ema (Adam, constant lr) keep resuming."""
    import minflow.commands.tarflow as tarflow_command

    opts = ["--train-size", "64", "--no-figures"]
    straight, _ = run_tarflow(tmp_path, "s", "--epochs", "2", *opts)
    older = tuple(k for k in tarflow_command._CONFIG_KEYS if k not in ("optimizer", "schedule", "warmup", "ema"))
    with monkeypatch.context() as m:
        m.setattr(tarflow_command, "_CONFIG_KEYS", older)
        first, _ = run_tarflow(tmp_path, "r", "--epochs", "1", "--checkpoint", str(tmp_path / "old.npz"), *opts)
    assert "schedule" not in first["config"]
    resumed, _ = run_tarflow(
        tmp_path, "r", "--epochs", "2", "--checkpoint", str(tmp_path / "old.npz"), "--resume", *opts
    )
    assert resumed["test_bpd"] == straight["test_bpd"]


def test_tarflow_rejects_inconsistent_recipe_options(tmp_path, capsys):
    for options, message in [
        (["--warmup", "1"], "--warmup needs --schedule cosine"),
        (["--schedule", "cosine", "--warmup", "2"], "--warmup must be in"),
        (["--ema", "1.5"], "--ema must be a decay in"),
    ]:
        code = main(["tarflow", *TINY, "--epochs", "2", "--train-size", "64", "--no-figures", *options])
        assert code == 2
        assert message in capsys.readouterr().err


def test_tarflow_ema_with_val_keeps_the_average_that_was_evaluated(tmp_path):
    """The best file holds the best epoch's average: evaluated again, it gives that epoch's test bpd."""
    from minflow.checkpoint import load_checkpoint
    from minflow.commands.digits import EVAL_SEED
    from minflow.data.digits import N_LEVELS, load_digits
    from minflow.zoo import evaluate_bpd, tarflow_digits

    opts = ["--epochs", "3", "--train-size", "200", "--val", "60", "--ema", "0.9", "--no-figures"]
    results, _ = run_tarflow(tmp_path, "v", *opts, "--checkpoint", str(tmp_path / "v.npz"))
    epoch = results["best_epoch"]
    assert epoch == 1 + int(numpy.argmin(results["val_bpd"]))
    model = tarflow_digits(blocks=2, hidden=8)
    load_checkpoint(str(tmp_path / "v.best.npz"), model)
    bpd = evaluate_bpd(model, load_digits("test"), N_LEVELS, 2, EVAL_SEED)["bpd"]
    assert bpd == pytest.approx(results["test_bpd"][epoch - 1], rel=1e-6)
    load_checkpoint(str(tmp_path / "v.npz"), model)  # the last trained weights, not averaged
    assert evaluate_bpd(model, load_digits("test"), N_LEVELS, 2, EVAL_SEED)["bpd"] == pytest.approx(
        results["final_test_bpd_without_ema"], rel=1e-6
    )
