"""The commands' paths: outputs under runs/ by default, bad paths refused before training, --resume says what it does.

The bad paths themselves, with their messages, are the "cli" cases of
robustness/error_cases.py (docs/errors.md); here each is run with the
optimizers made to fail, so a path error that came after the first training
step would show up as that failure instead.
"""

import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "robustness"))

from error_cases import CommandLineError, build_cases, run_case

from minflow.__main__ import COMMANDS, build_parser, main
from minflow.commands.paths import RUNS
from minflow.optim import SGD, Adam

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH_OPTIONS = ("out", "json", "figure", "checkpoint")


class Trained(Exception):
    """An optimizer step was taken: training started."""


@pytest.fixture
def no_training(monkeypatch):
    def refuse(self):
        raise Trained("an optimizer step was taken before the path was checked")

    monkeypatch.setattr(Adam, "step", refuse)
    monkeypatch.setattr(SGD, "step", refuse)


def _bad_path_cases(workdir):
    """The cli cases whose command line names a path under the cases' folder or /proc."""
    cases = []
    for case in build_cases(workdir):
        argv = (case.call.__defaults__ or ((),))[0]
        if case.area == "cli" and any(os.path.join(workdir, "cli_paths") in a or a.startswith("/proc") for a in argv):
            cases.append(case)
    return cases


def test_every_bad_path_is_refused_before_training(tmp_path, no_training):
    cases = _bad_path_cases(str(tmp_path))
    assert len(cases) >= 13
    commands = set()
    for case in cases:
        err, message = run_case(case)
        assert isinstance(err, CommandLineError), f"{case.what}: {type(err).__name__}: {message}"
        assert message.startswith("error: --"), f"{case.what}: {message}"
        commands.add(case.what.strip("`").split()[0])
    assert commands == {name.replace("_", "-") for name in COMMANDS}  # every command checks its paths


def test_default_outputs_are_under_runs():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.dest in PATH_OPTIONS and action.default is not None:
                assert action.default.split(os.sep)[0] == RUNS, f"{name} {action.option_strings}: {action.default}"
            if action.help:  # defaults named in the help text (energy, warp) go there too
                assert "figures/" not in action.help, f"{name} {action.option_strings}: {action.help}"


def test_demo_writes_only_under_runs_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--steps", "2", "--test-samples", "10", "--no-progress"]) == 0
    written = sorted(os.path.relpath(os.path.join(d, f), tmp_path) for d, _, fs in os.walk(tmp_path) for f in fs)
    assert written and all(p.startswith(os.path.join(RUNS, "demo") + os.sep) for p in written), written


def test_resume_without_a_checkpoint_says_so_first(tmp_path, capsys):
    path = tmp_path / "missing.npz"
    argv = ["digits", "--hidden", "4", "--blocks", "1", "--train-size", "16", "--eval-draws", "1", "--no-figures"]
    assert main([*argv, "--epochs", "1", "--checkpoint", str(path), "--resume", "--no-progress"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"note: --resume: no checkpoint at {path}; a new run starts and saves it there."
    assert path.exists()
    assert main([*argv, "--epochs", "2", "--checkpoint", str(path), "--resume"]) == 0  # now it resumes
    assert capsys.readouterr().out.splitlines()[0] == f"resumed from {path} after epoch 1"


@pytest.mark.parametrize(
    ("old", "new", "command"),
    [("--quiet", "--no-progress", "digits"), ("--no-figure", "--no-figures", "energy")],
)
def test_old_flag_spellings_warn_and_act_as_the_new_one(old, new, command, capsys):
    parser = build_parser()
    assert vars(parser.parse_args([command, old])) == vars(parser.parse_args([command, new]))
    assert f"warning: {old} is deprecated; use {new}" in capsys.readouterr().err
    help_text = next(a for a in parser._actions if a.dest == "command").choices[command].format_help()
    assert new in help_text and not re.search(re.escape(old) + r"(?![\w-])", help_text)


def test_one_spelling_of_each_flag_across_commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        shown = {o for a in command._actions if a.help != "==SUPPRESS==" for o in a.option_strings}
        assert "--no-progress" in shown, name
        assert not shown & {"--quiet", "--no-figure"}, name


@pytest.mark.parametrize("command", [name.replace("_", "-") for name in COMMANDS])
def test_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "``" not in capsys.readouterr().out


def test_no_command_run_changes_a_tracked_file(tmp_path):
    """demo and warp with their default paths, from the repository root: git sees no change."""
    if subprocess.run(["git", "-C", REPO, "rev-parse"], capture_output=True, check=False).returncode != 0:
        pytest.skip("not a git checkout")

    def status():
        command = ["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"]
        return subprocess.run(command, capture_output=True, check=True).stdout

    before = status()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO)
    for argv in (
        ["demo", "--steps", "2", "--test-samples", "10"],
        ["warp", "--steps", "2", "--frames", "1", "--hold", "1", "--points", "20", "--dpi", "20"],
        ["energy", "--steps", "2", "--kl-samples", "10", "--grid-cells", "10"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "minflow", *argv, "--no-progress"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert status() == before
