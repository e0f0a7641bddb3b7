"""The BLAS thread policy of minflow/threads.py: one thread unless set_threads, --threads or MINFLOW_THREADS say otherwise.

What BLAS does is observed in a fresh Python process without the
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS caps (with a cap of 1, OpenBLAS cannot
be raised to 2 and the policies could not be told apart).
"""

import json
import os
import subprocess
import sys

import pytest

from minflow import threads

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = r"""
import json, sys
import numpy
from minflow import set_threads
from minflow.threads import blas_threads
from minflow.train import fit_samples
from minflow.zoo import realnvp_2d

def count():
    return max(blas_threads().values())

out = {"library": count()}
seen = []
model = realnvp_2d(n_layers=2, hidden=(8, 8))
sample = lambda n, rng: rng.standard_normal((n, 2))
fit_samples(model, sample, 3, batch_size=8, log_every=1, progress=False, callback=lambda step, loss: seen.append(count()))
out["in_fit"], out["after_fit"] = seen, count()
out["set_default"] = set_threads()
out["after_set"] = count()
set_threads(0)
out["after_set_0"] = count()
print(json.dumps(out))
"""


def _run(code, **env):
    """Run ``code`` in a fresh interpreter without thread caps; returns its stdout."""
    full = {
        k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    }
    full.pop(threads.ENV_VAR, None)
    full.update(env, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def library_threads():
    """The BLAS library's own thread count here; the probes need two to tell the policies apart."""
    n = json.loads(_run(PROBE).splitlines()[-1])["library"]
    if n < 2:
        pytest.skip(f"NumPy's BLAS runs {n} thread here; the policy cannot be observed")
    return n


def test_fit_runs_on_one_thread_and_restores_the_library_setting(library_threads):
    out = json.loads(_run(PROBE).splitlines()[-1])
    assert out["in_fit"] == [1, 1, 1]
    assert out["after_fit"] == library_threads
    assert (out["set_default"], out["after_set"]) == (1, 1)
    assert out["after_set_0"] == library_threads  # set_threads(0): the library's own default again


def test_environment_variable_sets_the_count(library_threads):
    out = json.loads(_run(PROBE, MINFLOW_THREADS="2").splitlines()[-1])
    assert out["in_fit"] == [2, 2, 2]
    assert (out["set_default"], out["after_set"]) == (2, 2)
    out = json.loads(_run(PROBE, MINFLOW_THREADS="0").splitlines()[-1])  # 0: leave the library alone
    assert out["in_fit"] == [library_threads] * 3


def test_command_line_threads_option(library_threads):
    code = (
        "import sys; from minflow.__main__ import build_parser; from minflow import threads\n"
        "from minflow.threads import set_threads, blas_threads\n"
        "args = build_parser().parse_args(sys.argv[1:]); set_threads(args.threads)\n"
        "print(max(blas_threads().values()))"
    )
    assert _run(code.replace("sys.argv[1:]", "['demo']")).strip() == "1"
    assert _run(code.replace("sys.argv[1:]", "['demo', '--threads', '2']")).strip() == "2"
    assert _run(code.replace("sys.argv[1:]", "['digits', '--threads', '0']")).strip() == str(library_threads)
    assert _run(code.replace("sys.argv[1:]", "['energy']"), MINFLOW_THREADS="2").strip() == "2"
    assert _run(code.replace("sys.argv[1:]", "['energy', '--threads', '1']"), MINFLOW_THREADS="2").strip() == "1"


def test_every_command_has_the_threads_option():
    from minflow.__main__ import COMMANDS, build_parser

    parser = build_parser()
    for name in COMMANDS:
        command = name.replace("_", "-")
        assert parser.parse_args([command, "--threads", "3"]).threads == 3
        assert parser.parse_args([command]).threads is None  # None: the policy decides


@pytest.mark.parametrize("value", ["-1", "two", "1.5", " "])
def test_bad_environment_value_is_a_clear_error(monkeypatch, value):
    monkeypatch.setattr(threads, "_chosen", None)
    monkeypatch.setenv(threads.ENV_VAR, value)
    if not value.strip():
        assert threads.threads() == threads.DEFAULT_THREADS  # empty means unset
        return
    with pytest.raises(ValueError, match="MINFLOW_THREADS must be a whole number"):
        threads.threads()


@pytest.mark.parametrize("value", [-1, 1.5, "x", True])
def test_bad_count_is_a_clear_error(value):
    with pytest.raises(ValueError, match="count must be a whole number"):
        threads.thread_limit(value)
