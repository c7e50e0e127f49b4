"""What a compiled network is expected to cost, before it has run: mean firing rates from
`scale-rates`, and from them the energy per inference that `snncc compile` prints.

`snncc eval` measures the same quantities from real simulator runs; this estimate only uses
the activation statistics (calibration images or the training stats file) that chose each
layer's scale. A layer's mean rate in spikes per step is its mean activation divided by its
`unit` (the activation that fires once per step), capped at one spike per step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from snncc.hw.energy import EnergyConstants
from snncc.ir.graph import Graph


def mean_rates(pass_reports: Mapping[str, Any]) -> dict[str, float]:
    """Expected spikes per step per neuron of each population scale-rates measured (those
    whose mean activation is unknown, such as an image input read from a stats file, are
    left out)."""
    rates = {}
    for name, layer in pass_reports.get("scale-rates", {}).get("layers", {}).items():
        mean, unit = layer.get("mean_activation", math.nan), layer.get("unit", math.nan)
        if unit and unit > 0 and math.isfinite(mean / unit):
            rates[name] = min(max(mean / unit, 0.0), 1.0)
    return rates


def compile_estimate(graph: Graph, pass_reports: Mapping[str, Any], source_model: Path,
                     constants: EnergyConstants | None = None) -> dict[str, Any] | None:
    """Energy per inference at the graph's timestep count from the expected rates, beside
    the ANN's; None when scale-rates left no rates (e.g. a pipeline without it)."""
    from snncc.evaluate.compare import OnnxModel
    from snncc.evaluate.energy_report import energy_report, onnx_macs

    rates = mean_rates(pass_reports)
    by_name = {op.result.name: op for op in graph.ops}
    rates = {k: v for k, v in rates.items() if k in by_name}
    if not rates:
        return None
    steps = graph.attrs.timesteps
    spikes = {k: r * int(np.prod(by_name[k].result.type.shape[1:])) * steps
              for k, r in rates.items()}
    ann = OnnxModel(source_model)
    batch = np.random.default_rng(0).random(graph.inputs[0].type.shape, dtype=np.float32)
    report = energy_report(graph, spikes, steps, onnx_macs(source_model),
                           ann.inference_seconds(batch), constants or EnergyConstants())
    report["rates"] = "expected from scale-rates statistics (mean activation / unit)"
    measured = pass_reports.get("scale-rates", {}).get("layers", {})
    report["left_out"] = sorted(set(measured) - set(rates))
    return report
