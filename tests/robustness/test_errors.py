"""Validation at the public boundary: every bad input of docs/errors.md fails with a clear message.

The cases live in ``error_cases.py``; ``tools/errors_table.py`` writes the
table of docs/errors.md from the messages the code gives, and the last test
checks that the committed table is the one the code writes today.
"""

import os
import sys
import tempfile
import warnings

import numpy
import pytest
from error_cases import build_cases, run_case

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))

import errors_table


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return {f"{c.area}: {c.what}": c for c in build_cases(str(tmp_path_factory.mktemp("error_cases")))}


def _case_ids():
    with tempfile.TemporaryDirectory() as workdir:
        return [f"{c.area}: {c.what}" for c in build_cases(workdir)]


CASE_IDS = _case_ids()


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_bad_input_raises_clear_error(cases, case_id):
    case = cases[case_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow warnings of the numerical cases
        err, message = run_case(case)
    assert isinstance(err, case.exc), f"{case_id}: expected {case.exc.__name__}, got {type(err).__name__}: {message}"
    missing = [name for name in case.names if name not in message]
    assert not missing, f"{case_id}: the message does not mention {missing}:\n{message}"


def test_every_area_of_the_issue_is_covered():
    areas = {case_id.split(":")[0] for case_id in CASE_IDS}
    assert areas == {"model", "training", "layers", "data", "checkpoints", "cli"}
    assert len(CASE_IDS) >= 70


def test_failed_checkpoint_loads_change_nothing(tmp_path):
    from minflow.backend import to_numpy
    from minflow.checkpoint import CheckpointError, load_checkpoint
    from minflow.zoo.r2 import realnvp_2d

    build_cases(str(tmp_path))  # writes the damaged files
    model = realnvp_2d(n_layers=2, hidden=(8, 8), seed=5)
    before = {k: to_numpy(p).copy() for k, p in model.params.items()}
    for name in ("truncated", "empty", "text", "flipped", "plain", "pickled", "v99"):
        with pytest.raises(CheckpointError):
            load_checkpoint(tmp_path / f"{name}.npz", model)
    for k, p in model.params.items():
        numpy.testing.assert_array_equal(to_numpy(p), before[k])


def test_docs_errors_table_is_up_to_date():
    with open(errors_table.OUT) as f:
        committed = f.read()
    assert committed == errors_table.render(), (
        "docs/errors.md differs from what the code says today: run `python tools/errors_table.py`."
    )
