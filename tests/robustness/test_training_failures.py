"""Training that fails: the divergence guard of ``train.fit`` and the layer-by-layer diagnosis.

A non-finite loss or gradient at a check must stop training with a message
that names the step, the first layer whose output or gradient went
non-finite, and what to try; the last good parameters (and buffers and
optimizer state) are restored and, with ``checkpoint_path``, written to disk.
"""

import numpy
import pytest

from minflow.backend import get_array_module, make_rng, to_device, to_numpy
from minflow.checkpoint import load_checkpoint
from minflow.data.energy import get_energy
from minflow.diagnostics import diagnose_nll
from minflow.distributions import StandardNormal
from minflow.flows import AffineCoupling, Flow
from minflow.flows.base import Bijection
from minflow.flows.batch_norm import BatchNorm
from minflow.model import FlowModel
from minflow.optim import Adam
from minflow.train import TrainingDiverged, fit, fit_samples
from minflow.zoo.d8 import d8
from minflow.zoo.p2 import fit_reverse_kl, planar_2d
from minflow.zoo.r2 import realnvp_2d

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the blow-ups overflow on purpose


def _batch(step, n=32):
    """A batch on the default backend (MINFLOW_BACKEND), where the models live."""
    return to_device(numpy.random.default_rng(step).standard_normal((n, 2)).astype(numpy.float32))


def _copy(arrays):
    return {k: to_numpy(v).copy() for k, v in arrays.items()}  # host copies


def _assert_equal(arrays, expected):
    assert arrays.keys() == expected.keys()
    for k in arrays:
        numpy.testing.assert_array_equal(to_numpy(arrays[k]), to_numpy(expected[k]), err_msg=k)


class _BlowUp:
    """A loss for ``fit``: NLL of fresh batches; at step ``at`` it sets one coupling's
    last-layer weights to ``value`` first. Records the state at the start of every step."""

    def __init__(self, model, optimizer, at, layer, value=3e38):
        self.model, self.optimizer, self.at, self.layer, self.value = model, optimizer, at, layer, value
        self.params, self.optim = {}, {}

    def __call__(self, step):
        self.params[step] = _copy(self.model.params)
        self.optim[step] = _copy(self.optimizer.state())
        if step == self.at:
            self.model.flow[self.layer].net.params["linear2.W"][...] = self.value
        return self.model.nll_and_backward(_batch(step))


def _r2_setup(n_layers=4):
    model = realnvp_2d(n_layers=n_layers, hidden=(16, 16))
    optimizer = Adam(model.params, model.grads, lr=1e-2)
    return model, optimizer


def test_fit_diverged_names_the_blown_up_coupling_and_restores_the_last_good_state():
    model, optimizer = _r2_setup()
    loss = _BlowUp(model, optimizer, at=5, layer=2)
    with pytest.raises(TrainingDiverged) as info:
        fit(model, loss, 20, optimizer, log_every=1, progress=False)
    err = info.value
    message = str(err)
    assert err.step == 5 and err.last_good_step == 4
    assert "step 5" in message and "layer 2 (AffineCoupling)" in message
    assert "forward output" in message and "net.linear2.W = 3e+38" in message
    assert "lower learning rate" in message and "clip_norm" in message
    assert (err.diagnosis.stage, err.diagnosis.layer_path, err.diagnosis.layer_class) == (
        "output",
        "2",
        "AffineCoupling",
    )
    # the parameters and the Adam state of the start of step 4, bit for bit
    _assert_equal(model.params, loss.params[4])
    _assert_equal(optimizer.state(), loss.optim[4])
    assert optimizer.t == 4


def test_fit_diverged_writes_the_last_good_state_to_the_checkpoint_and_calls_on_diverge(tmp_path):
    model, optimizer = _r2_setup()
    loss = _BlowUp(model, optimizer, at=3, layer=1)
    path = tmp_path / "run" / "last_good.npz"
    seen = []

    def on_diverge(err):
        seen.append((err, _copy(model.params)))

    with pytest.raises(TrainingDiverged) as info:
        fit(model, loss, 10, optimizer, log_every=1, progress=False, checkpoint_path=path, on_diverge=on_diverge)
    assert f"saved to {path}" in str(info.value) and info.value.checkpoint_path == path
    assert len(seen) == 1 and seen[0][0] is info.value
    _assert_equal(seen[0][1], loss.params[2])  # restored before the hook runs
    fresh, fresh_optimizer = _r2_setup()
    extra = load_checkpoint(path, fresh, fresh_optimizer)
    assert extra == {"step": 2, "diverged_at": 3}
    _assert_equal(fresh.params, loss.params[2])
    _assert_equal(fresh_optimizer.state(), loss.optim[2])


class _Poison(Bijection):
    """The identity forward; its backward poisons the input gradient or its parameter's gradient."""

    def __init__(self, where):
        super().__init__()
        self.where = where
        self.add_param("a", to_device(numpy.ones(2, dtype=numpy.float32)))  # on the default backend

    def forward(self, x):
        return x, get_array_module(x).zeros(x.shape[0], dtype=x.dtype)

    def backward(self, dz, dlogdet):
        if self.where == "input":
            return dz * numpy.inf
        self._own_grads["a"] += numpy.nan
        return dz


@pytest.mark.parametrize(
    ("where", "stage", "text"),
    [("input", "input gradient", "gradient of its forward input"), ("param", "parameter gradient", "parameter a")],
)
def test_fit_finite_loss_with_nonfinite_gradient_names_the_layer(where, stage, text):
    flow = Flow(
        [
            AffineCoupling(2, [True, False], hidden=(8,), rng=make_rng(0)),
            _Poison(where),
            AffineCoupling(2, [False, True], hidden=(8,), rng=make_rng(0)),
        ]
    )
    model = FlowModel(flow, StandardNormal((2,)))
    optimizer = Adam(model.params, model.grads)
    with pytest.raises(TrainingDiverged) as info:
        fit(model, lambda step: model.nll_and_backward(_batch(step)), 5, optimizer, progress=False)
    message = str(info.value)
    assert "step 0" in message and "the loss is finite" in message and "a gradient is NaN or infinite" in message
    assert "layer 1 (_Poison)" in message and text in message
    assert info.value.diagnosis.stage == stage and info.value.last_good_step is None
    assert "no earlier check" in message


def test_fit_divergence_between_checks_restores_the_last_check_and_says_so():
    model, optimizer = _r2_setup()
    loss = _BlowUp(model, optimizer, at=7, layer=2)
    with pytest.raises(TrainingDiverged) as info:
        fit(model, loss, 30, optimizer, log_every=5, progress=False)
    err = info.value
    assert (err.step, err.last_good_step) == (10, 5)
    assert "between steps 6 and 10" in str(err) and "log_every=1" in str(err)
    # the update of step 7 spread NaN into every parameter; the diagnosis says they were broken before
    assert err.diagnosis.stage == "parameter" and "earlier update" in str(err)
    _assert_equal(model.params, loss.params[5])


def test_fit_samples_nonfinite_batch_mid_training_says_clean_the_data():
    model, _ = _r2_setup()
    calls = []

    def sample(n, rng):
        calls.append(n)
        x = rng.standard_normal((n, 2))
        if len(calls) == 3:
            x[4, 1] = numpy.nan
        return x

    with pytest.raises(TrainingDiverged) as info:
        fit_samples(model, sample, 10, batch_size=16, log_every=1, progress=False)
    assert info.value.step == 2 and info.value.diagnosis.stage == "batch"
    assert "the batch itself is non-finite (1 of 32 entries)" in str(info.value)
    assert "Clean the data" in str(info.value)


def test_fit_reverse_kl_divergence_names_the_planar_layer():
    model = planar_2d(n_layers=4)

    class Target:
        u1 = get_energy("U1")

        def energy(self, x):
            return self.u1.energy(x)

        def grad(self, x):
            if len(calls) == 3:  # at step 3: w = 0 exactly leaves u_hat undefined (0 / 0)
                model.flow[1].params["w"][...] = 0.0
            calls.append(1)
            return self.u1.grad(x)

    calls = []
    with pytest.raises(TrainingDiverged) as info:
        fit_reverse_kl(model, Target(), n_steps=10, batch_size=16, log_every=1, progress=False)
    err = info.value
    # w was zeroed between the step's pass and its backward: its gradient is the first to go bad
    assert err.step == 3 and "a gradient is NaN or infinite" in str(err)
    assert "layer 1 (Planar)" in str(err) and "inverse output" in str(err), str(err)
    assert err.diagnosis.stage == "output"
    assert bool((model.flow[1].params["w"] != 0).all())  # restored


def test_fit_with_a_loss_that_bypasses_the_model_still_restores_and_explains():
    model, optimizer = _r2_setup()
    values = [1.0, 0.5, float("nan")]
    with pytest.raises(TrainingDiverged) as info:
        fit(model, lambda step: values[step], 3, optimizer, progress=False, log_every=1)
    assert info.value.step == 2 and info.value.last_good_step == 1 and info.value.diagnosis is None
    assert "No batch to re-run" in str(info.value)


def test_fit_checkpoint_that_cannot_be_written_does_not_hide_the_divergence(tmp_path):
    model, optimizer = _r2_setup()
    loss = _BlowUp(model, optimizer, at=2, layer=0)
    (tmp_path / "taken").mkdir()  # a folder where the checkpoint file should go
    with pytest.raises(TrainingDiverged) as info:
        fit(model, loss, 5, optimizer, log_every=1, progress=False, checkpoint_path=tmp_path / "taken")
    assert "failed" in str(info.value) and info.value.checkpoint_path is None
    _assert_equal(model.params, loss.params[1])


def test_fit_reads_the_loss_back_only_at_checks():
    model, optimizer = _r2_setup(n_layers=2)
    reads = []

    class Loss:
        def __init__(self, value):
            self.value = value

        def __float__(self):
            reads.append(1)
            return float(self.value)

    fit(model, lambda step: Loss(model.nll_and_backward(_batch(step))), 10, optimizer, log_every=4, progress=False)
    assert len(reads) == 4  # steps 0, 4, 8 and the last, 9


def test_fit_restores_buffers_of_the_last_good_check():
    flow = Flow(
        [
            BatchNorm(2),
            AffineCoupling(2, [True, False], hidden=(8,), rng=make_rng(0)),
            AffineCoupling(2, [False, True], hidden=(8,), rng=make_rng(0)),
        ]
    )
    model = FlowModel(flow, StandardNormal((2,)))
    optimizer = Adam(model.params, model.grads)
    buffers = {}

    def loss(step):
        buffers[step] = _copy(model.buffers())
        if step == 4:
            model.flow[2].net.params["linear1.W"][...] = 3e38
        return model.nll_and_backward(_batch(step) * 3 + 1)

    with pytest.raises(TrainingDiverged) as info:
        fit(model, loss, 8, optimizer, log_every=1, progress=False)
    assert info.value.diagnosis.layer == "layer 2 (AffineCoupling)"
    # restored to the last good check (step 3), taken after that step's forward had updated
    # the running statistics: those the start of step 4 saw
    assert info.value.last_good_step == 3
    _assert_equal(model.buffers(), buffers[4])  # not those step 4's own forward left behind


def test_diagnose_nll_names_a_layer_inside_the_multiscale_block_and_leaves_no_trace():
    model = d8(size=4, hidden=4, n_blocks=1, dtype=numpy.float64)
    rng = numpy.random.default_rng(0)
    for p in model.params.values():
        p[...] = to_device(0.1 * rng.standard_normal(p.shape))
    v = to_device(rng.uniform(0, 1, (3, 1, 4, 4)))
    assert not diagnose_nll(model, v).found
    inner = model.flow[8].inner[2]  # FactorOut -> its inner Flow -> coupling 2
    inner.net.params["conv_out.W"][...] = 1e308  # t = conv_out(h) overflows: sums of terms near 1e308
    grads = _copy(model.grads)
    diagnosis = diagnose_nll(model, v)
    assert diagnosis.layer == "layer 8.inner.2 (ImageAffineCoupling)", diagnosis
    assert diagnosis.stage == "output"
    _assert_equal(model.grads, grads)  # the diagnosis puts the gradients back


def test_diagnose_nll_sees_a_base_log_density_overflow():
    model = realnvp_2d(n_layers=2, hidden=(4,))
    diagnosis = diagnose_nll(model, to_device(numpy.full((2, 2), 1e20, dtype=numpy.float32)))
    assert diagnosis.stage == "base log-density" and diagnosis.layer is None
    assert "|z| reaches 1e+20" in str(diagnosis)


def test_fit_singular_mixing_matrix_becomes_training_diverged_naming_the_layer():
    from minflow.flows.invertible_linear import InvertibleLinear

    flow = Flow(
        [
            AffineCoupling(2, [True, False], hidden=(8,), rng=make_rng(0)),
            InvertibleLinear(2, rng=make_rng(0)),
            AffineCoupling(2, [False, True], hidden=(8,), rng=make_rng(0)),
        ]
    )
    model = FlowModel(flow, StandardNormal((2,)))
    optimizer = Adam(model.params, model.grads)
    start = {}

    def loss(step):
        start[step] = _copy(model.params)
        if step == 3:
            model.flow[1].params["W"][...] = to_device(numpy.array([[1.0, 2.0], [2.0, 4.0]]))  # rank 1
        return model.nll_and_backward(_batch(step))

    with pytest.raises(TrainingDiverged) as info:
        fit(model, loss, 10, optimizer, log_every=1, progress=False)
    message = str(info.value)
    assert info.value.step == 3 and "raised FloatingPointError" in message and "W is singular" in message
    assert info.value.diagnosis.layer == "layer 1 (InvertibleLinear)" and info.value.diagnosis.stage == "log-det"
    _assert_equal(model.params, start[2])
