"""Tests for ``python -m minflow energy`` and ``python -m minflow figure3``.

Short runs (a few steps, small KL samples) must write the JSON with the keys
the reference runs read (kl, log_z, steps, seconds) and the figure; bad
option values stop with exit code 2.
"""

import json

import matplotlib.image
import pytest

from minflow.__main__ import main
from minflow.commands.energy import train_on_energy
from minflow.commands.figure3 import COLUMNS
from minflow.data.energy import LOG_Z


@pytest.mark.parametrize("flow, layers", [("planar", "2"), ("radial", "3"), ("realnvp", "2"), ("iaf", "2")])
def test_cli_energy_writes_json_and_figure(flow, layers, tmp_path, capsys):
    result, figure = tmp_path / "r.json", tmp_path / "f.png"
    code = main(
        ["energy", "--target", "U2", "--flow", flow, "--layers", layers, "--steps", "30", "--json", str(result),
         "--figure", str(figure), "--no-progress", "--kl-samples", "3000", "--grid-cells", "60"]
    )  # fmt: skip
    assert code == 0
    data = json.loads(result.read_text())
    assert {"kl", "log_z", "steps", "seconds", "kl_stderr", "ms_per_step"} <= set(data)
    assert data["steps"] == 30 and data["log_z"] == LOG_Z["U2"] and data["layers"] == int(layers)
    assert -4 * data["kl_stderr"] < data["kl"] < 4.5  # at most about the untrained base's 3.82 + noise
    assert data["ms_per_step"] == pytest.approx(1000 * data["seconds"] / 30)
    assert matplotlib.image.imread(figure).shape[0] > 100
    assert f"KL(q || p) = {data['kl']:.4f}" in capsys.readouterr().out


def test_cli_energy_rejects_bad_options(capsys):
    bad = (["energy", "--target", "U9"], ["energy", "--flow", "maf"], ["energy", "--flow", "iaf", "--layers", "0"])
    for argv in bad + (["energy", "--steps", "0"],):
        with pytest.raises(SystemExit) as err:
            main(argv)
        assert err.value.code == 2
    assert "--steps" in capsys.readouterr().err


def test_cli_energy_iaf_default_is_the_zoo_iaf_2d(tmp_path):
    from minflow.commands.energy import build_model
    from minflow.zoo import iaf_2d

    model = build_model("iaf", 2, seed=2)
    assert model.num_params() == iaf_2d().num_params()
    assert all((model.params[k] == p).all() for k, p in iaf_2d(seed=2).params.items())
    result = tmp_path / "r.json"
    argv = ["energy", "--flow", "iaf", "--steps", "3", "--kl-samples", "500", "--no-figures", "--no-progress"]
    assert main(argv + ["--json", str(result)]) == 0
    assert json.loads(result.read_text())["layers"] == 2


def test_cli_figure3_writes_grid_table_and_json(tmp_path):
    result, figure = tmp_path / "f3.json", tmp_path / "f3.png"
    code = main(
        ["figure3", "--steps", "3", "--targets", "U1", "U4", "--seeds", "0", "1", "--kl-samples", "500",
         "--json", str(result), "--figure", str(figure), "--no-progress", "--grid-cells", "40"]
    )  # fmt: skip
    assert code == 0
    data = json.loads(result.read_text())
    assert len(data["runs"]) == 2 * 2 * len(COLUMNS)
    assert len(data["summary"]) == 2 * len(COLUMNS)
    for s in data["summary"]:
        assert s["seeds"] == [0, 1] and s["kl_min"] <= s["kl_mean"] <= s["kl_max"]
    table = data["table"].splitlines()
    assert len(table) == 4 and table[2].startswith("| U1 |") and "planar K=32" in table[0]
    image = matplotlib.image.imread(figure)
    assert image.shape[0] > 300 and image.shape[1] > image.shape[0]  # 2 rows x 6 columns


def test_cli_energy_bound_sets_the_iaf_interval_and_is_refused_for_other_flows(tmp_path, capsys):
    quick = ["--steps", "2", "--kl-samples", "100", "--no-figures", "--no-progress"]
    out = tmp_path / "iaf.json"
    assert main(["energy", "--flow", "iaf", "--bound", "5", *quick, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["bound"] == 5.0
    model, _ = train_on_energy("U1", "iaf", 2, 2, kl_samples=100, progress=False, bound=5.0)
    assert [layer.layer.transformer.bound for layer in model.flow.layers] == [5.0, 5.0]  # the model's, not a label
    assert main(["energy", "--flow", "planar", "--bound", "5", *quick]) == 2
    assert "--flow planar has no splines" in capsys.readouterr().err
