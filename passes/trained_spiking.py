"""trained-spiking: a directly trained SNN's own thresholds, floors and rates.

`scale-rates` derives firing-rate scales from an ANN's activation statistics. A network
trained through its spiking dynamics (`snncc.sim.differentiable`) needs none: its
thresholds, membrane floors and input encoding were learned or fixed in training, and its
ONNX metadata (`snncc.spiking`, `snncc.data.trained`) declares them. This pass takes them
instead of scale-rates: it checks that the converted graph has the neurons the network was
trained with (neuron kind, reset, synaptic filter), then sets each population's
`v_threshold`, `v_min` and `mean_rate` (matched by ONNX Relu node name), the input
population's threshold, the step each readout integrates from (the declared delay, which a
trained network may have learned to make shorter than the slowest path), and the graph's
`dt` and `timesteps` (the T it was trained for); the graph's `trained` attribute says where
they came from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.location import onnx_node
from snncc.ir.ops import IF, Readout, SpikeInput
from snncc.ir.ops.kinds import Neurons
from snncc.ir.properties import NORMALIZED, SPIKING
from snncc.pipeline.pass_base import Pass, PassContext

CONVERT_HINT = "convert-activations{reset=zero tau-s=0}"


@dataclass(frozen=True)
class TrainedSpiking(Pass):
    name = "trained-spiking"
    summary = "a directly trained SNN's thresholds and rates (its ONNX metadata), not scale-rates"
    requires = frozenset({SPIKING})
    establishes = frozenset({NORMALIZED})

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        from snncc.data.trained import METADATA_KEY

        declared = ctx.trained
        if declared is None:
            raise SnnccError(f"trained-spiking: the model declares no trained spiking network "
                             f"(ONNX metadata '{METADATA_KEY}', written by "
                             "snncc.training.spiking_export); an ANN needs scale-rates instead")
        pops = {onnx_node(op.loc) or op.result.name: op
                for op in graph.ops if isinstance(op, Neurons)}
        missing = sorted(set(pops) - set(declared.layers))
        unknown = sorted(set(declared.layers) - set(pops))
        if missing or unknown:
            raise SnnccError(f"trained-spiking: the metadata '{METADATA_KEY}' does not match "
                             f"this graph's populations: none declared for {missing or '-'}, "
                             f"declared but absent {unknown or '-'}; re-export the model")
        for node, op in pops.items():
            a = op.attrs
            if not isinstance(op, IF) or a.reset != declared.reset or a.tau_s != declared.tau_s:
                kind = "neuron.if" if isinstance(op, IF) else op.name
                raise SnnccError(
                    f"trained-spiking: {op.describe()} is {kind} with reset={a.reset}, "
                    f"tau_s={a.tau_s:g}, but the network was trained with neuron.{declared.neuron}"
                    f", reset={declared.reset}, tau_s={declared.tau_s:g}; convert with "
                    f"{CONVERT_HINT}")
            layer = declared.layers[node]
            op.replace_attrs(v_threshold=layer.v_threshold, mean_rate=layer.mean_rate,
                             v_min=declared.v_min * layer.v_threshold, v_initial=0.0)
        for op in graph.ops_of(SpikeInput):
            op.replace_attrs(v_threshold=declared.input_threshold, amplitude=1.0)
        for op in graph.ops_of(Readout):  # read out from the step it was trained to
            op.replace_attrs(delay=declared.readout_delay)
        origin = (f"{METADATA_KEY}: T = {declared.timesteps}, neuron.{declared.neuron} "
                  f"reset={declared.reset}, thresholds, v_min and mean_rate as trained")
        graph.attrs = dataclasses.replace(graph.attrs, dt=declared.dt,
                                          timesteps=declared.timesteps, trained=origin)
        ctx.record(self.name, populations=len(pops), timesteps=declared.timesteps,
                   readout_delay=declared.readout_delay, training=declared.training)
        return True
