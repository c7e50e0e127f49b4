"""What a compiled network is expected to cost, before it has run: the energy per inference
that `snncc compile` prints, from the mean rates `scale-rates` wrote into the IR.

`snncc eval` measures the same quantities from real simulator runs; this estimate only uses
each population's `mean_rate` (its mean activation on the statistics that chose its scale,
in spikes per step). It works from the IR alone, so a staged compile gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from snncc.evaluate.energy_report import energy_report
from snncc.hw.energy import EnergyConstants
from snncc.ir.graph import Graph
from snncc.ir.ops.kinds import SpikeSource
from snncc.ir.summary import mean_rates


def compile_estimate(graph: Graph, macs: int, cpu_runs: Sequence[float],
                     constants: EnergyConstants | None = None) -> dict[str, Any] | None:
    """Energy per inference at the graph's timestep count from the expected rates, beside
    the ANN's (`macs` and the measured wall times `cpu_runs` of one-image inferences); None
    when no population carries a mean rate (e.g. a pipeline without scale-rates)."""
    rates = mean_rates(graph)
    if not rates:
        return None
    steps = graph.attrs.timesteps
    by_name = {op.result.name: op for op in graph.ops}
    spikes = {k: r * int(np.prod(by_name[k].result.type.shape[1:])) * steps
              for k, r in rates.items()}
    report = energy_report(graph, spikes, steps, macs, cpu_runs,
                           constants or EnergyConstants())
    report["rates"] = "expected from scale-rates statistics (mean_rate in the IR)"
    report["left_out"] = sorted(op.result.name for op in graph.ops
                                if isinstance(op, SpikeSource) and op.result.name not in rates)
    return report
