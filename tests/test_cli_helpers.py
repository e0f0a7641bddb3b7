"""The shared helpers of ``minflow/commands/__init__.py``."""

import argparse
import json
import os
import stat

from minflow.commands import add_training_args, write_json


def test_write_json_file_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "out" / "results.json"
        write_json(str(path), {"b": 1, "a": [1.5]})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert json.loads(path.read_text()) == {"a": [1.5], "b": 1}
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temporary file left


def test_add_training_args_defaults_are_the_r2_recipe():
    parser = argparse.ArgumentParser()
    add_training_args(parser, seed_help="seed")
    args = parser.parse_args([])
    assert (args.steps, args.batch_size, args.lr, args.seed) == (5000, 512, 1e-3, 0)
    args = parser.parse_args(["--steps", "7", "--batch-size", "3", "--lr", "0.5", "--seed", "2"])
    assert (args.steps, args.batch_size, args.lr, args.seed) == (7, 3, 0.5, 2)
