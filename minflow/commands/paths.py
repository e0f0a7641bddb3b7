"""Checks of the commands' path options, run before any training starts.

A wrong path should cost a second, not a training run: each command checks
every path it will write (and the checkpoint it may read) first, and a path
that cannot work is a ``ValueError`` naming the option, the path, what is
wrong and what to give instead:

- a folder option (``--out`` of demo, digits, ...) naming an existing file;
- a file option (``--json``, ``--figure``, ``--checkpoint``) naming an
  existing folder;
- a path under an existing file (``--out README.md/figures``);
- a path where no file can be created (a read-only or missing-permission
  folder).

Commands write their outputs under ``runs/`` (``RUNS``) unless a path is
given, so that no command overwrites a file the repository tracks unless
asked to.
"""

import os
import tempfile

__all__ = ["RUNS", "check_output_file", "check_output_folder", "check_readable_file"]

RUNS = "runs"  # the default home of every command's outputs (git-ignored)


def _nearest_existing(path):
    """The path itself or its closest existing ancestor (the current folder at worst)."""
    current = os.path.abspath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def _check_creatable(folder, option, given, example):
    """``folder`` exists, or can be created, under a folder this process can write in.

    ``option`` and ``given`` (its value) name the path in the message; ``example`` is a path that would work.
    """
    anchor = _nearest_existing(folder)
    if not os.path.isdir(anchor):
        raise ValueError(
            f"{option} {given}: {anchor} is a file, so nothing can be written under it. "
            f"Give a path in a folder (e.g. {option} {example})."
        )
    try:
        with tempfile.TemporaryFile(dir=anchor):  # the one sure test: create a file there (and remove it)
            pass
    except OSError as err:
        raise ValueError(
            f"{option} {given}: cannot create files in {anchor} ({err.strerror}). "
            f"Give a path in a folder you can write to (e.g. {option} {example})."
        ) from None


def check_output_folder(path, option):
    """``path`` is, or can be made, a folder that this process can write files into.

    Args:
        path: the value of the option, e.g. ``args.out``.
        option: its name for the message, e.g. ``"--out"``.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(
            f"{option} {path}: that is an existing file, and {option} names a folder for the outputs. "
            f"Give a folder (e.g. {option} {RUNS}/)."
        )
    _check_creatable(os.path.abspath(path), option, path, f"{RUNS}/")


def check_output_file(path, option, example="results.json"):
    """``path`` can be written as a file: not an existing folder, and in a folder that exists or can be made.

    ``example`` is a file name the message suggests inside a folder given by mistake.
    """
    if os.path.isdir(path):
        raise ValueError(
            f"{option} {path}: that is an existing folder, and {option} names a file. "
            f"Give a file path (e.g. {option} {os.path.join(path, example)})."
        )
    folder = os.path.dirname(os.path.abspath(path))
    _check_creatable(folder, option, path, os.path.join(RUNS, os.path.basename(path)))


def check_readable_file(path, option):
    """``path``, where it exists, is a file (a folder is a clear error); whether it exists is returned."""
    if os.path.isdir(path):
        raise ValueError(f"{option} {path}: that is a folder, and {option} names a file. Give the file's path.")
    return os.path.exists(path)
