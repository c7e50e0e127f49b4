"""The Loihi target: the spiking IR as a nengo-loihi network, on the emulator or on chips.

See `docs/targets-loihi.md`. The nengo-free parts live in `snncc.hw.loihi` (`geometry`: IR →
nengo geometry and host/chip roles; `limits`: per-core limits counted as nengo-loihi does;
`chip_blocks`: the chip block graph). Here: `builder` (the nengo network),
`allocator` (placement from partition-chips), `runner` (runs, estimates, readouts).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.hw.loihi.geometry import PROJECTIONS, Lowered, lower
from snncc.hw.loihi.limits import LOIHI_CORES_PER_CHIP, POP32_SLOTS, CoreUse, summarize_use
from snncc.ir.graph import Graph
from snncc.ir.ops import Flatten, Population, Reshape, Sigmoid, Softmax, SpikeSource
from snncc.ir.summary import synapse_count
from snncc.pipeline.pass_base import PassContext
from snncc.pipeline.target import RunResult, Target
from snncc.targets.loihi.builder import import_nengo, neuron_problem

READOUT_NOTE = ("readouts run on the host: the mean over steps [delay, T) of the current the "
                "readout's projections deliver from the probed spikes of their sources")
INPUT_NOTE = ("neuron.input is an off-chip ensemble (on_chip=False) whose neurons feed the first "
              "on-chip convolutions; constant currents (biases, an image read as current) are "
              "ensemble biases")
HOST_OPS = (Sigmoid, Softmax, Flatten, Reshape)


def _problems(graph: Graph) -> tuple[Lowered | None, list[str]]:
    try:
        lowered = lower(graph)
    except SnnccError as err:
        return None, [str(err)]
    problems = [p for p in (neuron_problem(x, graph.attrs.dt) for x in lowered.layers) if p]
    for op in graph.ops:
        if not isinstance(op, (Population, SpikeSource, *HOST_OPS)) and op not in PROJECTIONS:
            problems.append(f"{op.describe()} has no Loihi "
                            "form; run the spiking conversion pipeline (fuse-linear, "
                            "convert-activations) first")
    if "tiled" not in graph.attrs.properties:
        problems.append("the graph is not tiled into cores; add tile-cores to the pipeline")
    return lowered, problems


def _facts(graph: Graph, lowered: Lowered) -> dict[str, Any]:
    """What nengo-loihi builds, to rebuild the network from the IR and weights."""
    nengo, nengo_loihi = import_nengo()
    layers, projections = [], []
    for x in lowered.layers:
        a = x.op.attrs
        layers.append({
            "name": x.op.result.name, "op": x.op.name, "role": x.role,
            "shape": list(x.shape), "neurons": int(np.prod(x.shape)),
            "on_chip": x.role == "chip",
            "gain": None if x.role == "readout" else 1.0 / a.v_threshold,
            "block_shape": None if x.role != "chip" or a.block_shape is None
            else list(a.block_shape),
            "chips": list(a.chips) if x.role == "chip" else [],
        })
        for p in x.projections:
            projections.append({
                "name": p.op.result.name, "op": p.op.name,
                "source": lowered.source(p).op.result.name, "target": x.op.result.name,
                "transform": {"conv": "Convolution", "transpose": "ConvolutionTranspose",
                              "dense": "Dense", "sparse": "Sparse"}[p.kind]
                if x.role == "chip" else "host",
                "kernel_shape": list(p.kernel.shape), "strides": list(p.strides),
                "padding": p.padding,
            })
    return {"nengo": nengo.__version__, "nengo_loihi": nengo_loihi.__version__,
            "dt": graph.attrs.dt, "channels_last": False, "pop_type": 32,
            "output_axon_slots_per_pixel": POP32_SLOTS, "input": INPUT_NOTE,
            "readout": READOUT_NOTE, "layers": layers, "projections": projections}


def _placement(graph: Graph, lowered: Lowered, outdir: Path) -> dict[str, Any]:
    """Traffic of the IR's placement (rates as partition-chips used them) and its picture,
    `placement.png`."""
    from snncc.hw.loihi.chip_blocks import block_graph, layer_rates, placement_of
    from snncc.targets.loihi.placement_plot import plot_placement

    rates, source = layer_rates(graph, lowered)
    blocks = block_graph(lowered, rates)
    placement = placement_of(lowered, blocks)
    plot_placement(blocks, placement, outdir / "placement.png",
                   caption=f"@{graph.name}, T = {graph.attrs.timesteps} steps; "
                   f"line width ∝ spikes per step ({source})")
    return {"interchip_spikes_per_step": round(placement.interchip_spikes_per_step, 4),
            "intrachip_spikes_per_step": round(placement.intrachip_spikes_per_step, 4),
            "cores_per_chip": list(placement.cores_used),
            "interchip_note": source, "placement_plot": "placement.png"}


@dataclass(frozen=True)
class LoihiTarget(Target):
    """Options: `max_seconds` and `max_memory_gb` refuse runs estimated to exceed them (the
    emulator is slow: a few minutes by default, the message says what the numpy target's
    loihi mode would take)."""

    name = "loihi"
    summary = "Intel Loihi through nengo-loihi: emulator here, hardware where NxSDK exists"
    default_pipeline = ("canonicalize,fold-batchnorm,fuse-linear,"
                        "convert-activations{reset=zero},scale-rates,quantize-weights,tile-cores,"
                        "partition-chips")
    trained_pipeline = ("canonicalize,fold-batchnorm,fuse-linear,"
                        "convert-activations{reset=zero tau-s=0},trained-spiking,"
                        "quantize-weights,tile-cores,partition-chips")
    distill_pipeline = ("canonicalize,fold-batchnorm,fuse-linear,"
                        "convert-activations{reset=zero tau-s=0 v-min=-1},scale-rates,"
                        "distill-spiking{timesteps=100 shortest=64},quantize-weights,"
                        "tile-cores,partition-chips")
    modes = ("emulator", "hardware")

    max_seconds: float = 300.0
    max_memory_gb: float = 8.0

    def check(self, graph: Graph) -> list[str]:
        return _problems(graph)[1]

    def _checked(self, graph: Graph) -> Lowered:
        lowered, problems = _problems(graph)
        if problems:
            raise SnnccError("target 'loihi' cannot take this graph:\n  - "
                             + "\n  - ".join(problems))
        assert lowered is not None
        return lowered

    def report(self, graph: Graph) -> tuple[Lowered, dict[str, Any]]:
        """Neurons, synapses, cores, chips and per-core use of the tiled graph."""
        lowered = self._checked(graph)
        counter = CoreUse(lowered)
        chip = lowered.chip_layers()
        shapes = {id(x.op): x.op.attrs.block_shape for x in chip}
        blocks = [u for x in chip for u in counter.layer(x, x.op.attrs.block_shape, shapes)]
        placed = all(x.op.attrs.chips for x in chip)
        chips = len({c for x in chip for c in x.op.attrs.chips}) if placed else None
        return lowered, {
            "neurons": {"on_chip": sum(int(np.prod(x.shape)) for x in chip),
                        "host": sum(int(np.prod(x.shape)) for x in lowered.layers
                                    if x.role != "chip")},
            "synapses": {"on_chip": sum(synapse_count(p.op, graph.weights) for x in chip
                                        for p in x.projections),
                         "host": sum(synapse_count(p.op, graph.weights)
                                     for x in lowered.layers if x.role == "readout"
                                     for p in x.projections)},
            "cores": len(blocks),
            "chips": chips,
            "chips_needed_at_least": math.ceil(len(blocks) / LOIHI_CORES_PER_CHIP),
            "utilisation": summarize_use(blocks),
            "interchip_spikes_per_step": 0 if chips == 1 else None,
            "interchip_note": ("all blocks on one chip" if chips == 1 else
                               "not estimated: partition-chips has not placed the blocks"
                               if chips is None else
                               "not estimated here: needs measured rates (partition-chips)"),
        }

    def emit(self, graph: Graph, outdir: Path, ctx: PassContext) -> dict[str, Any]:
        lowered, facts = self.report(graph)
        build = _facts(graph, lowered)
        (outdir / "loihi.json").write_text(json.dumps(build, indent=2) + "\n")
        facts["build_facts"] = "loihi.json"
        if facts["chips"] is not None:
            facts.update(_placement(graph, lowered, outdir))
        return facts

    def run(self, graph: Graph, inputs: list[np.ndarray], mode: str,
            timesteps: int | None = None, progress: bool = False) -> RunResult:
        from snncc.targets.loihi.runner import run

        self._checked(graph)
        return run(graph, inputs, mode, timesteps or graph.attrs.timesteps, progress,
                   self.max_seconds, self.max_memory_gb)
