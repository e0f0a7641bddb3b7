"""Host read-backs in the training loop, counted on the CPU.

On a GPU every conversion of a device array to a Python number or a host
array (``float(a)``, ``bool(a)``, ``int(a)``, ``a.item()``, ``a.tolist()``,
``backend.to_numpy(a)``) waits for the device to finish its queue. ``fit``
promises one such wait per ``log_every`` steps (the loss, plus one flag for
all gradients), none on the other steps.

The check runs without a GPU: the model's parameters, gradients and data are
views of ``CountingArray``, a NumPy subclass that counts those conversions.
NumPy carries the subclass through every ufunc, matmul and reduction; arrays
that a layer creates itself (``xp.empty``, ``xp.concatenate``, ...) come out
as CountingArray too, because every minflow module's ``get_array_module``
hands out ``_CountingNumpy``, numpy with each array it returns viewed as
CountingArray.
"""

import sys
from typing import ClassVar

import numpy
import pytest

import minflow
from minflow.data.toy2d import get_toy
from minflow.train import fit_samples
from minflow.zoo import realnvp_2d


class CountingArray(numpy.ndarray):
    """An ndarray that records each conversion to a host value in ``CountingArray.reads``."""

    reads: ClassVar[list] = []  # kinds of read-back, in order; reset by the `counting` fixture

    def _read(self, kind):
        CountingArray.reads.append(kind)

    def __float__(self):
        self._read("float")
        return float(self.view(numpy.ndarray))

    def __bool__(self):
        self._read("bool")
        return bool(self.view(numpy.ndarray))

    def __int__(self):
        self._read("int")
        return int(self.view(numpy.ndarray))

    def __index__(self):
        self._read("index")
        return self.view(numpy.ndarray).__index__()

    def item(self, *args):
        self._read("item")
        return self.view(numpy.ndarray).item(*args)

    def tolist(self):
        self._read("tolist")
        return self.view(numpy.ndarray).tolist()


class _CountingNumpy:
    """numpy, except that each plain ndarray a function returns is viewed as CountingArray."""

    def __getattr__(self, name):
        attr = getattr(numpy, name)
        if not callable(attr) or isinstance(attr, type):  # constants, submodules, dtypes, numpy.ndarray
            return attr

        def counting(*args, **kwargs):
            out = attr(*args, **kwargs)
            return out.view(CountingArray) if type(out) is numpy.ndarray else out

        return counting


@pytest.fixture
def counting(monkeypatch):
    """Reset the counter; in every minflow module, count ``to_numpy`` calls and hand out ``_CountingNumpy``."""
    CountingArray.reads = []
    original_to_numpy = minflow.backend.to_numpy
    original_module_of = minflow.backend.get_array_module
    counting_numpy = _CountingNumpy()

    def counting_to_numpy(x):
        if isinstance(x, CountingArray):
            CountingArray.reads.append("to_numpy")
        return original_to_numpy(x)

    def counting_module_of(*arrays):
        return counting_numpy if original_module_of(*arrays) is numpy else original_module_of(*arrays)

    for name, module in list(sys.modules.items()):
        if name.startswith("minflow"):
            if getattr(module, "to_numpy", None) is original_to_numpy:
                monkeypatch.setattr(module, "to_numpy", counting_to_numpy)
            if getattr(module, "get_array_module", None) is original_module_of and name != "minflow.backend":
                monkeypatch.setattr(module, "get_array_module", counting_module_of)
    return CountingArray


def _counting_r2(n_layers=4):
    """R2 (smaller hidden layers, same structure) whose parameters and gradients are CountingArray views."""
    model = realnvp_2d(n_layers=n_layers, hidden=(16, 16), seed=0)
    model._map_arrays(lambda a: a.view(CountingArray))
    return model


def _train_and_count(model, n_steps, log_every):
    """Train with fit_samples; the host read-backs made in each step (list of lists of kinds)."""
    toy = get_toy("gaussians8")
    starts = []  # len(CountingArray.reads) when each step draws its batch

    def sample(n, rng):
        starts.append(len(CountingArray.reads))
        return toy.sample(n, rng).view(CountingArray)

    fit_samples(model, sample, n_steps, batch_size=64, lr=1e-3, log_every=log_every, progress=False)
    bounds = starts + [len(CountingArray.reads)]
    return [CountingArray.reads[bounds[i] : bounds[i + 1]] for i in range(n_steps)]


def test_counting_stub_sees_the_parameters_and_the_loss(counting):
    model = _counting_r2()
    assert all(isinstance(p, CountingArray) for p in model.params.values())
    loss = model.nll_and_backward(get_toy("gaussians8").sample(8, numpy.random.default_rng(0)).view(CountingArray))
    assert all(isinstance(g, CountingArray) for g in model.grads.values())
    float(loss)
    assert counting.reads == ["float"]  # the loss came out as a CountingArray, and its read was counted


def test_fit_reads_back_only_on_log_steps(counting):
    n_steps, log_every = 12, 5
    per_step = _train_and_count(_counting_r2(), n_steps, log_every)
    logged = {s for s in range(n_steps) if s % log_every == 0 or s == n_steps - 1}
    for step, reads in enumerate(per_step):
        if step in logged:
            # the loss and one flag for all gradients; at step 0 also the one-off full data check
            allowed = 3 if step == 0 else 2
            assert 1 <= len(reads) <= allowed, (step, reads)
        else:
            assert reads == [], f"step {step} (not a log step) read back {reads}"
    assert sum(map(len, per_step)) <= 2 * len(logged) + 1


def test_fit_with_log_every_1_reads_back_on_every_step(counting):
    per_step = _train_and_count(_counting_r2(), n_steps=4, log_every=1)
    assert all(1 <= len(reads) <= 3 for reads in per_step), per_step  # the counter does see each check


class _CountingRng:
    """A host generator whose normal draws are CountingArray (as base noise drawn on the device would be)."""

    def __init__(self, seed):
        self._rng = numpy.random.default_rng(seed)

    def standard_normal(self, size):
        return self._rng.standard_normal(size=size).view(CountingArray)


def test_sampling_reads_back_one_flag(counting):
    model = _counting_r2()
    x = model.sample(100, _CountingRng(0))
    assert isinstance(x, CountingArray)
    assert counting.reads == ["bool"]  # the finiteness check; the caller converts x once, e.g. with to_numpy
