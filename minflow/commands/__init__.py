"""Subcommands of ``python -m minflow``; shared argument types and output helpers."""

import argparse
import json
import os
import sys
import tempfile

from ..checkpoint import new_file_mode
from .paths import RUNS

__all__ = [
    "DeprecatedFlag",
    "add_command_parser",
    "add_output_args",
    "add_training_args",
    "fit_toy",
    "markdown_grid",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "pyplot",
    "save_pyplot_figure",
    "write_json",
]


def _checked_number(text, parse, is_valid, expected):
    """``parse(text)`` if it parses and ``is_valid``; otherwise an argparse error saying ``expected``."""
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
    if not is_valid(value):
        raise argparse.ArgumentTypeError(f"expected {expected}; got {value}")
    return value


def positive_int(text):
    """argparse type: an integer >= 1, with a clear message otherwise."""
    return _checked_number(text, int, lambda value: value >= 1, "a positive integer")


def non_negative_int(text):
    """argparse type: an integer >= 0, with a clear message otherwise."""
    return _checked_number(text, int, lambda value: value >= 0, "a whole number >= 0")


def positive_float(text):
    """argparse type: a float > 0 (not NaN), with a clear message otherwise."""
    return _checked_number(text, float, lambda value: value > 0, "a positive number")


def add_command_parser(subparsers, name, help, doc):
    """The subparser ``name``; its description is the first paragraph of the command module's ``doc``.

    The docstring's ``literal`` quotes are dropped: --help is plain text.
    """
    return subparsers.add_parser(name, help=help, description=doc.split("\n\n")[0].replace("``", ""))


class DeprecatedFlag(argparse.Action):
    """A flag kept under an old spelling: hidden from --help, it warns and then acts as ``use`` does.

    parser.add_argument("--quiet", action=DeprecatedFlag, use="--no-progress", dest="no_progress")
    """

    def __init__(self, option_strings, dest, use, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        self.use = use

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is deprecated; use {self.use} (it does the same).", file=sys.stderr)
        setattr(namespace, self.dest, True)


def add_training_args(parser, seed_help):
    """--steps, --batch-size, --lr, --seed: the R2 recipe's options, read by ``fit_toy``."""
    parser.add_argument(
        "--steps",
        type=positive_int,
        default=5000,
        metavar="N",
        help="training steps (default: %(default)s, the R2 recipe)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=512,
        metavar="N",
        help="fresh samples per step (default: %(default)s)",
    )
    parser.add_argument(
        "--lr", type=positive_float, default=1e-3, metavar="LR", help="Adam learning rate (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="N", help=f"{seed_help} (default: %(default)s)")


def add_ode_steps_arg(parser, default, purpose):
    """--ode-steps: RK4 steps of ``--model cfm`` from noise to data, for ``purpose``."""
    parser.add_argument(
        "--ode-steps",
        type=positive_int,
        default=default,
        metavar="N",
        help=f"--model cfm: RK4 steps from noise to data, {purpose} (default: %(default)s)",
    )


def add_output_args(parser, folder, json_name, figure_name):
    """--json (results), --out (the folder of the figure ``figure_name``), both under runs/``folder``/; --no-progress."""
    parser.add_argument("--json", default=os.path.join(RUNS, folder, json_name), help="results (default: %(default)s)")
    parser.add_argument(
        "--out",
        default=os.path.join(RUNS, folder),
        help=f"folder of the figure {figure_name} (default: %(default)s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def fit_toy(model, toy, args, desc, trainer=None):
    """Train ``model`` on fresh samples of ``toy`` with ``args.steps``, ``batch_size``, ``lr``, ``seed``.

    ``trainer`` is ``train.fit_samples`` (maximum likelihood, the default) or
    ``continuous.fit_flow_matching`` (the flow matching loss): both take
    (model, sampler, steps, batch_size, lr, seed, progress, desc). Returns its
    history; the progress bar shows ``desc`` unless ``args.no_progress``.
    """
    from ..train import fit_samples

    return (trainer or fit_samples)(
        model,
        toy.sample,
        args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        progress=not args.no_progress,
        desc=desc,
    )


def markdown_grid(corner, columns, rows):
    """A Markdown table: the header ``corner | columns...``, then ``label | cells...`` for each (label, cells) of rows."""
    lines = ["| " + " | ".join([corner, *columns]) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += ["| " + " | ".join([label, *cells]) + " |" for label, cells in rows]
    return "\n".join(lines)


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_pyplot_figure(fig, path, dpi=110):
    """Lay out ``fig``, save it at ``path`` (creating the folder) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def write_json(path, data):
    """Write ``data`` as JSON atomically (temporary file, then rename).

    The file gets the usual mode of a new file (0666 less the umask, e.g.
    0644), not the 0600 of ``mkstemp``.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        os.fchmod(fd, new_file_mode())
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
