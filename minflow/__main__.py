"""The command line: ``python -m minflow COMMAND [options]``; ``--help`` lists them.

Each command lives in ``minflow/commands/<name>.py`` with ``add_parser`` and
``run``; this file only dispatches.
"""

import argparse
import functools
import importlib
import sys

from .commands import non_negative_int
from .threads import DEFAULT_THREADS, ENV_VAR, set_threads
from .train import TrainingDiverged

__all__ = ["main"]

# Each entry is a module in minflow/commands with add_parser(subparsers) and run(args).
COMMANDS = ["energy", "figure3", "demo", "warp", "glow_ablation", "compare2d", "digits", "tarflow"]


def build_parser():
    # Options are spelled out in full (allow_abbrev=False): `--step 5` is an error, not --steps 5.
    parser = argparse.ArgumentParser(
        prog="python -m minflow",
        description="minflow: normalizing flows from scratch in NumPy. Train, evaluate and draw the reference models.",
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=functools.partial(argparse.ArgumentParser, allow_abbrev=False)
    )
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"minflow.commands.{name}").add_parser(sub)
    for command in sub.choices.values():
        command.add_argument(
            "--threads",
            type=non_negative_int,
            metavar="N",
            help=f"BLAS threads for the matrix products (default: ${ENV_VAR}, else {DEFAULT_THREADS}, fastest for "
            "these small models, above all on a busy machine; 0: the BLAS library's default)",
        )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        set_threads(args.threads)
        return args.run(args) or 0
    except (ValueError, TypeError, FileNotFoundError, FloatingPointError, TrainingDiverged) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
