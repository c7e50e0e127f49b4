"""The compile-time estimate: mean rates from scale-rates, energy per image, the summary."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from snncc.cli.main import main
from snncc.ir.io import load_ir
from snncc.ir.summary import mean_rates
from snncc.passes.scale_rates import expected_rate


def test_expected_rate_divides_mean_activation_by_unit_and_caps_at_one_spike():
    assert expected_rate(0.5, 2.0) == 0.25
    assert expected_rate(9.0, 2.0) == 1.0
    assert expected_rate(-1.0, 2.0) == 0.0
    assert expected_rate(math.nan, 4.0) is None  # an input whose mean a stats file lacks


def test_compile_prints_and_records_the_expected_energy(tmp_path, capsys):
    pytest.importorskip("torch")
    from models.unets import UNetSpec, export_unet

    onnx = export_unet(UNetSpec("est", opset=13, up="convT2", width=2), tmp_path / "u.onnx")
    np.save(tmp_path / "cal.npy", np.random.default_rng(1).random((8, 1, 16, 16), np.float32))
    out = tmp_path / "out"
    assert main(["compile", str(onnx), "--target", "loihi", "--calibration",
                 str(tmp_path / "cal.npy"), "-o", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "Loihi cores on 1 chip(s)" in err
    assert "energy per image, expected at T = 100: Loihi" in err

    report = json.loads((out / "report.json").read_text())
    estimate = report["energy_estimate"]
    graph = load_ir(out / "model.snnir")
    rates = mean_rates(graph)
    layers = report["pass_reports"]["scale-rates"]["layers"]
    assert rates == pytest.approx({k: min(v["mean_activation"] / v["unit"], 1.0)
                                   for k, v in layers.items()})
    sizes = {op.result.name: int(np.prod(op.result.type.shape[1:])) for op in graph.ops}
    expected = sum(r * sizes[k] * 100 for k, r in rates.items())
    assert estimate["loihi_counts"]["spikes"] == pytest.approx(expected)
    assert estimate["loihi"]["total"] > 0
    assert estimate["ann"]["macs"] > 0 and estimate["ann"]["cpu_seconds"] > 0
