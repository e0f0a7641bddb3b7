"""Tests for ``python -m minflow warp`` (minflow/commands/warp.py).

A short run writes a GIF with 2 * (hold + 8 * frames) frames (R2 has 8
layers); ``--checkpoint`` trains and saves on the first run, loads on the
next, and refuses a checkpoint of another dataset; bad option values stop
with exit code 2 and a message naming the option.
"""

import pytest
from PIL import Image

from minflow.__main__ import main

FAST = ["--steps", "3", "--frames", "2", "--hold", "1", "--points", "80", "--dpi", "30", "--no-progress"]


def test_warp_writes_gif_with_expected_frame_count(tmp_path, capsys):
    out = tmp_path / "figs" / "warp_moons.gif"
    assert main(["warp", "--dataset", "moons", "--out", str(out), *FAST]) == 0
    with Image.open(out) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 2 * (1 + 8 * 2)
        assert gif.info["loop"] == 0  # loops forever
    assert "34 frames" in capsys.readouterr().out


def test_warp_checkpoint_is_saved_then_loaded(tmp_path, capsys):
    ckpt = tmp_path / "r2_moons.npz"
    args = ["warp", "--out", str(tmp_path / "a.gif"), "--checkpoint", str(ckpt), *FAST]
    assert main(args) == 0
    assert ckpt.exists()
    assert "training 3 steps" in capsys.readouterr().out
    assert main(args) == 0
    assert f"loaded from {ckpt}" in capsys.readouterr().out


def test_warp_refuses_checkpoint_of_another_dataset(tmp_path, capsys):
    ckpt = tmp_path / "r2_moons.npz"
    assert main(["warp", "--dataset", "moons", "--out", str(tmp_path / "a.gif"), "--checkpoint", str(ckpt), *FAST]) == 0
    capsys.readouterr()
    code = main(["warp", "--dataset", "rings", "--out", str(tmp_path / "b.gif"), "--checkpoint", str(ckpt), *FAST])
    assert code == 2
    assert "trained on 'moons', not 'rings'" in capsys.readouterr().err
    assert not (tmp_path / "b.gif").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--frames", "0"], "argument --frames: expected a positive integer; got 0"),
        (["--fps", "-2"], "argument --fps: expected a positive integer; got -2"),
        (["--dataset", "foo"], "argument --dataset: invalid choice: 'foo'"),
        (["--steps", "1.5"], "argument --steps: expected a positive integer; got '1.5'"),
    ],
)
def test_warp_rejects_bad_option_with_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["warp", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_warp_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["warp", "--help"])
    text = capsys.readouterr().out
    for option in ["--dataset", "--out", "--steps", "--batch-size", "--lr", "--seed", "--frames", "--hold", "--fps",
                   "--points", "--dpi", "--density", "--checkpoint", "--no-progress"]:  # fmt: skip
        assert option in text


def test_warp_cfm_writes_one_frame_per_ode_step_and_reuses_its_checkpoint(tmp_path, capsys):
    out, ckpt = tmp_path / "cfm.gif", tmp_path / "cfm.npz"
    args = ["warp", "--model", "cfm", "--ode-steps", "4", "--out", str(out), "--checkpoint", str(ckpt), *FAST]
    assert main(args) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 2 * (1 + 4)
    assert main(args) == 0
    assert f"loaded from {ckpt}" in capsys.readouterr().out
