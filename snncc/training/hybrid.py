"""Hybrid training's start and end: an ANN converted for spiking training, and the
declaration of the trained network.

Direct training from scratch needs many epochs of BPTT; starting from the trained ANN's
converted weights (Rathi et al. 2020, "Enabling deep spiking neural networks with hybrid
conversion and spike timing dependent backpropagation") needs a few, which is what a
2-core machine affords. `converted_graph` is snncc's own conversion with the neuron the
trainer simulates (integrate-and-fire, reset to zero, no synaptic filter, a membrane floor
`v_min` thresholds below zero), so training starts exactly where compilation would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snncc.data.trained import TrainedLayer, TrainedSpiking
from snncc.ir.graph import Graph
from snncc.ir.location import onnx_node
from snncc.ir.ops import IF, Readout, SpikeInput
from snncc.ir.ops.kinds import Synapse, through_views

TRAINED_NEURON = "if"
TRAINED_RESET = "zero"


def converted_pipeline(v_min: float) -> str:
    return ("canonicalize,fold-batchnorm,fuse-linear,"
            f"convert-activations{{reset={TRAINED_RESET} tau-s=0 v-min={v_min:g}}},scale-rates")


def converted_graph(model: str | Path, v_min: float = -1.0, input_threshold: float = 1.0,
                    calibration: np.ndarray | None = None) -> Graph:
    """The ONNX ANN converted with the trained neuron and scaled from its rate statistics
    (its metadata or sidecar file, or `calibration` images); the input population's
    threshold is set to `input_threshold` with the first layer's weights rescaled so that
    every rate is unchanged."""
    from snncc.data.stats import read_onnx_stats, sidecar_path
    from snncc.frontend.onnx import import_onnx
    from snncc.pipeline.manager import PassManager, parse_pipeline
    from snncc.pipeline.pass_base import PassContext

    graph = import_onnx(model)
    ctx = PassContext(calibration=calibration, progress=False)
    if calibration is None:
        ctx.stats = read_onnx_stats(model)
        ctx.stats_origin = str(model)
        if ctx.stats is None and sidecar_path(model).is_file():
            ctx.stats_file = sidecar_path(model)
    PassManager(parse_pipeline(converted_pipeline(v_min))).run(graph, ctx)
    for op in graph.ops_of(SpikeInput):
        factor = input_threshold / op.attrs.v_threshold
        for syn in graph.ops:
            if isinstance(syn, Synapse) and through_views(syn.inputs[0]) is op.result:
                w = graph.weights[syn.attrs.weight] * np.float32(factor)
                syn.replace_attrs(weight=graph.weights.add(syn.attrs.weight.name, w))
        op.replace_attrs(v_threshold=input_threshold)
    return graph


def trained_graph(model: str | Path) -> Graph:
    """A directly trained SNN exported by `snncc.training.spiking_export`, as the trainer's
    graph again (unquantized), to train it further."""
    from snncc.data.trained import read_onnx_trained
    from snncc.frontend.onnx import import_onnx
    from snncc.pipeline.manager import PassManager, parse_pipeline
    from snncc.pipeline.pass_base import PassContext

    declared = read_onnx_trained(model)
    if declared is None:
        raise ValueError(f"{model}: not a directly trained SNN (no 'snncc.spiking' metadata)")
    graph = import_onnx(model)
    pipeline = ("canonicalize,fold-batchnorm,fuse-linear,"
                f"convert-activations{{reset={TRAINED_RESET} tau-s=0}},trained-spiking")
    PassManager(parse_pipeline(pipeline)).run(graph, PassContext(trained=declared,
                                                                 progress=False))
    return graph


def declaration(graph: Graph, timesteps: int, rates: dict[str, float],
                training: dict[str, Any]) -> TrainedSpiking:
    """What the exported file declares: the graph's neurons and the measured mean rates
    (spikes per step, by population name)."""
    pops = list(graph.ops_of(IF))
    fractions = {op.attrs.v_min / op.attrs.v_threshold for op in pops}
    if len(fractions) != 1:
        raise ValueError(f"populations have different membrane floors {sorted(fractions)}")
    layers = {(onnx_node(op.loc) or op.result.name):
              TrainedLayer(op.attrs.v_threshold, min(max(rates[op.result.name], 0.0), 1.0))
              for op in pops}
    (spike_input,) = graph.ops_of(SpikeInput)
    delays = {op.attrs.delay for op in graph.ops_of(Readout)}
    if len(delays) != 1:
        raise ValueError(f"readouts have different delays {sorted(delays)}")
    return TrainedSpiking(neuron=TRAINED_NEURON, reset=TRAINED_RESET, tau_s=0.0,
                          v_min=fractions.pop(), dt=graph.attrs.dt, timesteps=timesteps,
                          weight_bits=8, input_threshold=spike_input.attrs.v_threshold,
                          readout_delay=delays.pop(), layers=layers, training=training)
