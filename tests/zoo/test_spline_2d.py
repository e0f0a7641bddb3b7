"""Tests for minflow/zoo/spline_2d.py (maf_2d, nsf_2d, nsf_ar_2d, iaf_2d) and d8(transformer="spline")."""

import numpy
import pytest
from helpers import randomize_params

from minflow.commands.energy import build_model
from minflow.data.energy import get_energy
from minflow.gradcheck import brute_force_logdet, check_gradients
from minflow.zoo import d8, iaf_2d, maf_2d, nsf_2d, nsf_ar_2d, realnvp_2d
from minflow.zoo.spline_2d import IAF_BOUND

F64 = numpy.float64
BUILDERS = {"maf_2d": maf_2d, "nsf_2d": nsf_2d, "nsf_ar_2d": nsf_ar_2d, "iaf_2d": iaf_2d}


@pytest.mark.parametrize("name, count", [("maf_2d", 38_480), ("nsf_ar_2d", 36_710), ("nsf_2d", 34_698)])
def test_2d_model_has_the_stated_size_at_most_40000(name, count):
    assert BUILDERS[name]().num_params() == count <= 40_000
    assert realnvp_2d().num_params() == 35_344


@pytest.mark.parametrize("name", list(BUILDERS))
def test_2d_model_starts_as_the_identity(name):
    model = BUILDERS[name](dtype=F64)
    x = numpy.random.default_rng(0).standard_normal((7, 2))
    numpy.testing.assert_allclose(model.log_prob(x), model.base.log_prob(x), rtol=1e-12, atol=1e-12)


def test_maf_2d_options_build_zukos_maf_and_refuse_a_learnable_bound():
    zuko_like = maf_2d(n_layers=8, hidden=(64, 64), scale="softclip", last_init="uniform", dtype=F64)
    assert zuko_like.num_params() == 36_896  # zuko 1.6's MAF(2, transforms=8)
    assert {layer.transformer.scale for layer in zuko_like.flow} == {"softclip"}
    x = numpy.random.default_rng(0).standard_normal((7, 2))
    assert numpy.abs(zuko_like.log_prob(x) - zuko_like.base.log_prob(x)).min() > 1e-3  # random last layers
    report = check_gradients(maf_2d(n_layers=2, hidden=(6,), scale="softclip", dtype=F64, seed=1).flow, x[:4])
    assert report.ok, report
    with pytest.raises(ValueError, match="a learnable bound is not one of its options"):
        maf_2d(scale="learnable")


@pytest.mark.parametrize("name", list(BUILDERS))
def test_2d_model_gradients_and_logdet_of_the_whole_flow(name):
    model = BUILDERS[name](n_layers=2, hidden=(6,), dtype=F64, seed=1)
    randomize_params(model, numpy.random.default_rng(2), scale=0.3)
    x = numpy.random.default_rng(3).standard_normal((4, 2))
    report = check_gradients(model.flow, x)
    assert report.ok, report
    _, logdet = model.flow.forward(x)
    numpy.testing.assert_allclose(logdet, brute_force_logdet(model.flow.forward, x), atol=1e-6)


def test_iaf_2d_default_and_the_larger_iaf_of_the_readme_keep_their_sizes_and_checkpoints(tmp_path):
    from minflow.checkpoint import load_checkpoint, save_checkpoint

    assert iaf_2d().num_params() == 5_340 and len(iaf_2d().flow.layers) == 2
    assert [layer.layer.transformer.bound for layer in iaf_2d().flow.layers] == [5.0, 5.0]  # as every earlier iaf_2d
    energy_iaf = build_model("iaf", 2)
    assert [layer.layer.transformer.bound for layer in energy_iaf.flow.layers] == [IAF_BOUND] * 2 == [6.0, 6.0]
    larger = iaf_2d(n_layers=4, hidden=(32, 32), n_bins=8, seed=1)
    assert larger.num_params() == 10_680
    save_checkpoint(tmp_path / "iaf4.npz", larger)
    model = iaf_2d(n_layers=4, seed=2)
    load_checkpoint(tmp_path / "iaf4.npz", model)
    assert all((model.params[k] == p).all() for k, p in larger.params.items())


def test_a_checkpoint_of_an_earlier_iaf_2d_loads_into_iaf_2d_and_gives_its_densities(tmp_path):
    from minflow.checkpoint import load_checkpoint, save_checkpoint

    x = numpy.random.default_rng(0).uniform(-5.5, 5.5, size=(64, 2))  # inside and outside [-5, 5]
    for n_layers in (2, 4):
        trained = iaf_2d(n_layers, bound=5.0, dtype=F64, seed=1)  # every iaf_2d before IAF_BOUND was on [-5, 5]
        randomize_params(trained, numpy.random.default_rng(1), scale=0.5)
        save_checkpoint(tmp_path / "iaf.npz", trained)
        default, wider = iaf_2d(n_layers, dtype=F64, seed=2), iaf_2d(n_layers, bound=IAF_BOUND, dtype=F64, seed=2)
        for model in (default, wider):
            load_checkpoint(tmp_path / "iaf.npz", model)
        numpy.testing.assert_array_equal(default.log_prob(x), trained.log_prob(x))
        # the bound is no parameter: on [-6, 6] the same weights are another density
        assert numpy.abs(wider.log_prob(x) - trained.log_prob(x)).max() > 1e-2


def test_iaf_2d_cycles_through_the_given_orders():
    model = iaf_2d(n_layers=3, orders=("natural",))
    assert [list(layer.layer.made.degrees) for layer in model.flow.layers] == [[1, 2]] * 3
    assert [list(layer.layer.made.degrees) for layer in iaf_2d(n_layers=3).flow.layers] == [[1, 2], [2, 1], [1, 2]]
    for bad in ((), "natural"):
        with pytest.raises(ValueError, match="orders must be a sequence of MADE orders"):
            iaf_2d(orders=bad)


def test_iaf_trains_by_reverse_kl_through_one_pass_per_layer():
    from minflow.zoo import fit_reverse_kl

    model = iaf_2d(n_layers=2, hidden=(8,), seed=0)
    calls = []
    made = model.flow[0].layer.made
    forward = made.forward
    made.forward = lambda x: calls.append(1) or forward(x)
    history = fit_reverse_kl(model, get_energy("U1"), n_steps=30, batch_size=64, progress=False)
    assert len(calls) == 30  # one MADE pass per step in the sampling direction
    assert numpy.isfinite(history["loss"][-1])


def test_d8_with_spline_couplings_keeps_the_architecture_and_its_gradients_check():
    model = d8(size=4, hidden=3, n_blocks=1, transformer="spline", dtype=F64, seed=0)
    randomize_params(model, numpy.random.default_rng(4), scale=0.1)
    v = numpy.random.default_rng(5).uniform(0.05, 0.95, size=(2, 1, 4, 4))
    report = check_gradients(model.flow, v, directions=("forward",), max_entries=20)
    assert report.ok, report
    _, logdet = model.flow.forward(v)
    numpy.testing.assert_allclose(logdet, brute_force_logdet(model.flow.forward, v), atol=1e-6)
    z, _ = model.flow.forward(v)
    numpy.testing.assert_allclose(model.flow.inverse(z)[0], v, atol=1e-10)
    assert d8(transformer="spline").num_params() == 488_135


def test_d8_rejects_an_unknown_transformer_and_a_scale_for_splines():
    with pytest.raises(ValueError, match="transformer must be one of"):
        d8(transformer="cubic")
    with pytest.raises(ValueError, match="a spline has none"):
        d8(transformer="spline", learnable_scale=True)
