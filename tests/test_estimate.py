"""The compile-time estimate: mean rates from scale-rates, energy per image, the summary."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from snncc.cli.main import main
from snncc.evaluate.estimate import mean_rates
from snncc.ir.io import load_ir


def test_mean_rates_divide_mean_activation_by_unit_and_cap_at_one_spike():
    report = {"scale-rates": {"layers": {
        "a": {"mean_activation": 0.5, "unit": 2.0},
        "b": {"mean_activation": 9.0, "unit": 2.0},
        "input": {"mean_activation": math.nan, "unit": 4.0},
        "dead": {"mean_activation": 0.0, "unit": 0.0},
    }}}
    assert mean_rates(report) == {"a": 0.25, "b": 1.0}
    assert mean_rates({}) == {}


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
    rates = mean_rates(report["pass_reports"])
    graph = load_ir(out / "model.snnir")
    sizes = {op.result.name: int(np.prod(op.result.type.shape[1:])) for op in graph.ops}
    expected = sum(r * sizes[k] * 100 for k, r in rates.items())
    assert estimate["loihi_counts"]["spikes"] == pytest.approx(expected)
    assert estimate["loihi"]["total"] > 0
    assert estimate["ann"]["macs"] > 0 and estimate["ann"]["cpu_seconds"] > 0
