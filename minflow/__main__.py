"""The command line: ``python -m minflow COMMAND [options]``; ``--help`` lists them.

Each command lives in ``minflow/commands/<name>.py`` with ``add_parser`` and
``run``; this file only dispatches.
"""

import argparse
import importlib
import sys

from .train import TrainingDiverged

__all__ = ["main"]

# Each entry is a module in minflow/commands with add_parser(subparsers) and run(args).
COMMANDS = ["energy", "figure3", "demo", "warp", "glow_ablation", "compare2d", "digits"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m minflow",
        description="minflow: normalizing flows from scratch in NumPy. Train, evaluate and draw the reference models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"minflow.commands.{name}").add_parser(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except (ValueError, TypeError, FileNotFoundError, FloatingPointError, TrainingDiverged) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
