"""Energy per inference as `snncc eval` reports it: Loihi from the SNN's measured spikes
versus the ANN on a CPU or GPU (docs/energy.md has the model and every constant)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snncc.evaluate.traffic import chip_traffic
from snncc.hw.energy import EnergyConstants, ann_energy, count_macs, fan_out, loihi_energy
from snncc.hw.loihi.limits import LOIHI_CORES_PER_CHIP
from snncc.ir.graph import Graph
from snncc.ir.ops.kinds import Population
from snncc.ir.ops.spiking import block_count

NO_PLACEMENT = ("no chip placement in the IR (run partition-chips): inter-chip spikes "
                "counted as zero")


def onnx_macs(model: Path, input_shapes: Mapping[str, tuple[int, ...]] | None = None) -> int:
    """Multiply-accumulates of one inference of the ONNX model (its analog IR);
    `input_shapes` binds dynamic inputs as `snncc compile --input-shape` does."""
    from snncc.frontend.onnx import import_onnx

    return count_macs(import_onnx(model, input_shapes, maxpool="avg"))


def _chips_from_blocks(graph: Graph) -> int:
    """Chips the tiled blocks need at one core per block (1 when the graph is not tiled)."""
    cores = sum(block_count(op.result.type.shape[1:], op.attrs.block_shape)
                for op in graph.ops
                if isinstance(op, Population) and op.attrs.block_shape is not None)
    return max(1, -(-cores // LOIHI_CORES_PER_CHIP))


def energy_report(graph: Graph, spikes: Mapping[str, float], timesteps: int, macs: int,
                  cpu_runs: Sequence[float], constants: EnergyConstants) -> dict[str, Any]:
    """Joules per inference on Loihi (by component) and for the ANN, their ratios, and the
    counts behind them; `spikes` is each population's spike count per inference,
    `cpu_runs` the measured seconds of single ANN inferences on this CPU: the median counts,
    and their spread is reported beside it (`cpu_measured_spread`, joules)."""
    traffic = chip_traffic(graph, spikes)
    chips = traffic.chips if traffic.placed else _chips_from_blocks(graph)
    loihi = loihi_energy(graph, dict(spikes), timesteps, chips, traffic.interchip_fraction,
                         constants, messages=traffic.messages)
    ann = ann_energy(macs, float(np.median(cpu_runs)), constants)
    ann["cpu_measured_spread"] = {"runs": len(cpu_runs),
                                  "min": min(cpu_runs) * constants.cpu_power_w,
                                  "max": max(cpu_runs) * constants.cpu_power_w}
    fanouts = fan_out(graph)
    return {
        "per": "inference (one model input)",
        "timesteps": timesteps,
        "loihi": loihi,
        "loihi_counts": {
            "synaptic_ops": sum(n * fanouts.get(k, 0.0) for k, n in spikes.items()),
            "spikes": sum(spikes.values()),
            "spike_messages": traffic.messages,
            "interchip_messages": traffic.interchip_messages,
            "interchip_fraction": traffic.interchip_fraction,
            "chips": chips,
            "placement": "partition-chips" if traffic.placed else NO_PLACEMENT,
        },
        "ann": ann,
        "ratio": {key: ann[key] / loihi["total"] if loihi["total"] > 0 else None
                  for key in ("cpu_counted", "cpu_measured", "gpu_counted")},
        "constants": dataclasses.asdict(constants),
    }
