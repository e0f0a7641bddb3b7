"""The repository's documents: every file they point to is in the repository, and the spec's numbers are the code's.

A reference is a Markdown link ``[text](path)`` (in Markdown files and
notebooks) or a bare mention of a file name ending in ``.md`` or ``.py``
(``docs/design.md``, ``compare.py``) in any tracked text file. A link
resolves from the folder of the file that holds it; a bare mention resolves
from that folder, from the repository root, or to any tracked file whose path
ends with it (``flows/base.py``, ``compare.py``). ``NN_topic.py`` is the
pattern of the lesson names, not a file.
"""

import os
import re
import subprocess

import pytest

from minflow.data.energy import LOG_Z
from minflow.data.toy2d import ENTROPY
from minflow.zoo import realnvp_2d
from minflow.zoo.d8 import d8

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = (".md", ".py", ".ipynb", ".txt", ".toml", ".cfg", ".yml", ".yaml")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
MENTION = re.compile(r"(?<![\w./-])((?:\.{1,2}/)?[\w-]+(?:[./][\w-]+)*\.(?:md|py))(?![\w/])")
EXTERNAL = ("http://", "https://", "mailto:", "#")
# (file, mention) pairs that name a file on purpose although the repository does not hold it
NOT_FILES_OF_THE_REPOSITORY = {
    ("docs/gpu.md", "benchmarks/results/gpu.md"),  # what benchmarks/gpu.py writes on a GPU machine
    ("docs/gpu.md", "benchmark.md"),  # what tools/gpu_check.sh writes to its output folder
    ("tests/test_gpu_check.py", "tests/no_such_test_file.py"),  # a missing test file, on purpose
    ("tests/test_no_numpy_outside_backend.py", "m.py"),  # a module the test writes in a temporary folder
}


def _tracked():
    try:
        out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return out.split()


def _is_text(path):
    name = os.path.basename(path)
    return path.endswith(TEXT) or name in ("Makefile", "run") or path.startswith(".ci/")


def _dangling(tracked):
    """(file, reference) pairs whose target is not in the repository."""
    files = set(tracked)

    def exists(candidate):
        candidate = os.path.normpath(candidate)
        return candidate in files or os.path.isdir(os.path.join(REPO, candidate))

    def held(mention, folder):
        return (
            exists(os.path.join(folder, mention))
            or exists(mention)
            or any(p == mention or p.endswith("/" + mention) for p in files)
        )

    found = []
    for path in filter(_is_text, tracked):
        if path == "tests/test_docs.py":
            continue  # its examples name missing files on purpose
        with open(os.path.join(REPO, path), encoding="utf-8", errors="replace") as f:
            text = f.read()
        folder = os.path.dirname(path)
        for target in LINK.findall(text) if path.endswith((".md", ".ipynb")) else []:
            target = target.split("#")[0].strip("<>")
            if target and not target.startswith(EXTERNAL) and not exists(os.path.join(folder, target)):
                found.append((path, target))
        for mention in MENTION.findall(text):
            if "NN_" not in mention and not held(mention, folder):
                found.append((path, mention))
    return sorted(set(found) - NOT_FILES_OF_THE_REPOSITORY)


def test_no_reference_to_a_file_outside_the_repository():
    dangling = _dangling(_tracked())
    assert not dangling, "references to files the repository does not hold:\n" + "\n".join(
        f"  {path}: {target}" for path, target in dangling
    )


def test_the_reference_scan_sees_links_and_mentions(tmp_path):
    """The scanner itself: a dangling link and a dangling bare mention are found, present files are not."""
    text = "See [the design](docs/design.md), [gone](docs/gone.md), DESIGN.md, docs/errors.md and train.py."
    assert LINK.findall(text) == ["docs/design.md", "docs/gone.md"]
    assert MENTION.findall(text) == ["docs/design.md", "docs/gone.md", "DESIGN.md", "docs/errors.md", "train.py"]


# -- docs/reference-problems.md is the spec: its values are the code's -------------------------


@pytest.fixture(scope="module")
def spec():
    with open(os.path.join(REPO, "docs", "reference-problems.md"), encoding="utf-8") as f:
        return f.read()


def test_entropies_and_log_z_of_the_spec_are_the_code_constants(spec):
    for name in ("gaussians8", "rings", "moons"):
        (value,) = re.findall(rf"\| H\({name}\) \| ([0-9.]+) \+-", spec)
        assert float(value) == ENTROPY[name]
    assert "| H(checkerboard) | ln 8 = 2.0794 nats |" in spec and round(ENTROPY["checkerboard"], 4) == 2.0794
    (row,) = re.findall(r"\| ln Z, U1 / U2 / U3 / U4 \(with the wall\) \| ([0-9. /]+) \|", spec)
    assert [float(v) for v in row.split(" / ")] == [LOG_Z[k] for k in ("U1", "U2", "U3", "U4")]


def test_parameter_counts_of_the_spec_are_the_models(spec):
    assert f"{realnvp_2d().num_params():,} parameters" in spec
    assert f"{d8().num_params():,} parameters" in spec
    assert "35,344 parameters" in spec and "384,962 parameters" in spec


# -- the text says what is, never how it came to be ------------------------------------

# phrases that narrate the repository's history; "session" alone stays allowed for Linux
# sessions (setsid), so the pattern names the sessions of work instead
NARRATION = re.compile(
    r"\b(?:first|second|third|this|that|an earlier|earlier|previous|last|later|next) session\b"
    r"|\bsession's\b|\bthis issue\b|\bthe issue's\b|\bthe issue\b|\bissue \d+\b"
    r"|\bbefore the changes?\b|\bbefore this work\b|\bearlier (?:round|version)s?\b",
    re.IGNORECASE,
)
# this file names the phrases in order to forbid them
NARRATION_EXEMPT = {"tests/test_docs.py"}


def _narration(path):
    """(line number, line) of each line of ``path`` with a phrase of NARRATION."""
    with open(os.path.join(REPO, path), encoding="utf-8", errors="replace") as f:
        return [(n, line.strip()) for n, line in enumerate(f, 1) if NARRATION.search(line)]


def test_no_history_narration_in_markdown_or_python():
    files = [p for p in _tracked() if p.endswith((".md", ".py")) and p not in NARRATION_EXEMPT]
    found = [f"{p}:{n}: {line}" for p in files for n, line in _narration(p)]
    assert not found, (
        "Say what is, not how it came to be (label measurements by what differs or by their JSON file; "
        "history belongs in git):\n" + "\n".join(found)
    )


def test_the_narration_scan_sees_each_phrase(tmp_path):
    for phrase in ("the first session's run", "as in the issue's target", "this issue", "before the changes"):
        assert NARRATION.search(phrase), phrase
    for fine in ("a neighbour in its own session (setsid)", "Linux shares the CPU between sessions", "a new issue"):
        assert not NARRATION.search(fine), fine
