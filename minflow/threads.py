"""How many BLAS threads minflow's matrix products use: one, unless asked otherwise.

minflow's models are small: R2 multiplies (512, 64) by (64, 64), D8's
convolutions are products of a few hundred rows by 288 columns. At these
sizes a second BLAS thread gains little on an idle machine and loses a lot on
a busy one: OpenBLAS splits every product between its threads and waits for
the slowest, so a single busy neighbour (a browser, a video call, another
training run) stalls each of the thousands of small products of a step.
One thread never waits for another. ``benchmarks/busy.py`` measures both
policies with a competing process (``benchmarks/RESULTS.md``).

The thread count, first rule that applies:

    1. ``set_threads(n)`` in Python, or ``--threads N`` on any command;
    2. the environment variable ``MINFLOW_THREADS``;
    3. ``DEFAULT_THREADS`` = 1.

``0`` means "leave the BLAS library's own default" (usually every core).
The commands apply the count to the whole process; ``train.fit`` applies it
while its loop runs and restores the previous setting afterwards; a notebook
applies it to the whole kernel with one call:

    import minflow
    minflow.set_threads()        # 1 thread, or MINFLOW_THREADS
    minflow.set_threads(2)       # 2 threads; set_threads(0): the library's default

The limits are set through threadpoolctl, which reaches the BLAS library
NumPy loaded (OpenBLAS, MKL, BLIS) at run time, unlike ``OMP_NUM_THREADS``,
which is read only when the library is first loaded.
"""

import functools
import os

__all__ = ["DEFAULT_THREADS", "ENV_VAR", "blas_threads", "set_threads", "thread_limit", "threads", "with_thread_policy"]

DEFAULT_THREADS = 1
ENV_VAR = "MINFLOW_THREADS"

_chosen = None  # the count given to set_threads, or None where it was not called
_applied = None  # set_threads' threadpoolctl limiter, which can restore the library's own setting


def _check_count(value, source):
    """``value`` as an int >= 0, or a ValueError naming ``source``."""
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = -1
    if isinstance(value, bool) or count < 0 or (not isinstance(value, str) and count != value):
        raise ValueError(
            f"{source} must be a whole number of threads >= 0 (0: the BLAS library's default); got {value!r}."
        )
    return count


def threads():
    """The thread count the policy chooses now: ``set_threads``'s, else ``MINFLOW_THREADS``, else 1 (0 = no limit)."""
    if _chosen is not None:
        return _chosen
    text = os.environ.get(ENV_VAR, "").strip()
    if text:
        return _check_count(text, f"the environment variable {ENV_VAR}")
    return DEFAULT_THREADS


def thread_limit(count=None):
    """A context manager that holds BLAS at ``count`` threads (default: ``threads()``) and then restores it.

    ``count=0`` changes nothing.

        with thread_limit():
            ...  # products on one thread
    """
    import numpy  # noqa: F401 (loads NumPy's BLAS library, so that threadpoolctl finds it)
    from threadpoolctl import threadpool_limits

    count = threads() if count is None else _check_count(count, "count")
    return threadpool_limits(limits=count or None, user_api="blas")


def set_threads(count=None):
    """Hold BLAS at ``count`` threads from now on (default: ``MINFLOW_THREADS``, else 1); returns the count.

    ``train.fit`` and the commands use the same count afterwards.
    ``set_threads(0)`` hands the choice back to the BLAS library.
    """
    global _chosen, _applied
    if count is not None:
        count = _check_count(count, "count")
    _chosen = None  # so that threads() reads the environment when count is None
    _chosen = threads() if count is None else count
    if _applied is not None:
        _applied.restore_original_limits()  # back to the library's setting before the first set_threads
    _applied = thread_limit(_chosen) if _chosen else None  # applied at once
    return _chosen


def blas_threads():
    """The thread count of each BLAS library loaded now, e.g. ``{"openblas": 1}`` (for reports)."""
    import numpy  # noqa: F401 (loads NumPy's BLAS library, so that threadpoolctl finds it)
    from threadpoolctl import threadpool_info

    return {info["internal_api"]: info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}


def with_thread_policy(function):
    """Decorator: run ``function`` inside ``thread_limit()`` (the count chosen at call time)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with thread_limit():
            return function(*args, **kwargs)

    return wrapper
