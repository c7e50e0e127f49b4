"""Export a directly trained spiking graph as an ONNX ANN that declares itself spiking.

The file is the ANN graph of the trained weights, one layer per population: each
population's synapse ops become Conv / ConvTranspose / Gemm nodes reading the Relu of
their source population (or the image), summed (`Sum`) when there are several, with the
population's bias on its first synapse node, then a Relu named as the population's ONNX
node was; readouts become the same sums without the Relu, followed by the host ops
(Sigmoid, Softmax). `snncc compile` imports it back into the same spiking graph, and the
metadata entry `snncc.spiking` (`snncc.data.trained`) makes it take the trained
thresholds instead of scaling rates. onnxruntime runs the file as an ANN: the rate model
of the SNN (ReLUs in place of rates, no staircase, no clipping at one spike per step).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from snncc.data.trained import METADATA_KEY, TrainedSpiking
from snncc.diagnostics import SnnccError
from snncc.host.files import write_atomic
from snncc.ir.graph import Graph, Value
from snncc.ir.location import onnx_node
from snncc.ir.op import Op
from snncc.ir.ops import (
    IF,
    Conv2d,
    ConvTranspose2d,
    Dense,
    Flatten,
    Readout,
    Reshape,
    Sigmoid,
    Softmax,
    SpikeInput,
)
from snncc.ir.ops.kinds import Synapse

OPSET = 17
IR_VERSION = 8  # opset 17's; onnxruntime refuses files newer than it knows


class _Writer:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.names: dict[int, str] = {}  # IR value → ONNX tensor name

    def tensor(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def synapse(self, syn: Op, bias: str | None) -> str:
        a = syn.attrs
        w = self.tensor(a.weight.name, self.graph.weights[a.weight])
        inputs = [self.names[id(syn.inputs[0])], w] + ([bias] if bias else [])
        out = syn.result.name
        if isinstance(syn, Dense):
            node = helper.make_node("Gemm", inputs, [out], name=out, transB=1)
        elif isinstance(syn, Conv2d):
            node = helper.make_node("Conv", inputs, [out], name=out, strides=list(a.strides),
                                    pads=list(a.pads), dilations=list(a.dilations),
                                    group=a.groups)
        elif isinstance(syn, ConvTranspose2d):
            node = helper.make_node("ConvTranspose", inputs, [out], name=out,
                                    strides=list(a.strides), pads=list(a.pads),
                                    dilations=list(a.dilations),
                                    output_padding=list(a.output_padding), group=a.groups)
        else:
            raise SnnccError(f"spiking export: {syn.describe()} has no ONNX form here")
        self.nodes.append(node)
        return out

    def layer(self, pop: Op) -> str:
        """The population's summed synapses plus bias (its pre-activation)."""
        b = None if pop.attrs.bias is None else self.graph.weights[pop.attrs.bias]
        channel = b is not None and b.ndim == 1
        bias = self.tensor(pop.attrs.bias.name, b) if channel else None
        parts = [self.synapse(v.owner, bias if i == 0 else None)
                 for i, v in enumerate(pop.inputs)]
        if b is not None and not channel:  # per neuron: one more term of the sum
            parts.append(self.tensor(pop.attrs.bias.name, b[None]))
        if len(parts) == 1:
            return parts[0]
        out = f"{pop.result.name}_sum"
        self.nodes.append(helper.make_node("Sum", parts, [out], name=out))
        return out

    def op(self, op: Op) -> None:
        name = op.result.name
        if isinstance(op, SpikeInput):
            self.names[id(op.result)] = self.names[id(op.inputs[0])]
        elif isinstance(op, IF):
            node = onnx_node(op.loc) or name
            self.nodes.append(helper.make_node("Relu", [self.layer(op)], [name], name=node))
            self.names[id(op.result)] = name
        elif isinstance(op, Readout):
            self.names[id(op.result)] = self.layer(op)
        elif isinstance(op, Flatten):
            self.nodes.append(helper.make_node("Flatten", [self.names[id(op.inputs[0])]],
                                               [name], name=name, axis=op.attrs.axis))
            self.names[id(op.result)] = name
        elif isinstance(op, Reshape):
            shape = f"{name}.shape"
            self.inits.append(numpy_helper.from_array(np.asarray(op.attrs.shape, np.int64),
                                                      shape))
            self.nodes.append(helper.make_node("Reshape", [self.names[id(op.inputs[0])], shape],
                                               [name], name=name))
            self.names[id(op.result)] = name
        elif isinstance(op, Sigmoid | Softmax):
            kind, extra = ("Sigmoid", {}) if isinstance(op, Sigmoid) else (
                "Softmax", {"axis": op.attrs.axis})
            self.nodes.append(helper.make_node(kind, [self.names[id(op.inputs[0])]], [name],
                                               name=name, **extra))
            self.names[id(op.result)] = name
        elif not isinstance(op, Synapse):
            raise SnnccError(f"spiking export: {op.describe()} ({op.name}) has no ONNX form "
                             "here")


def _value_info(name: str, value: Value) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.type.shape))


def spiking_onnx(graph: Graph, declaration: TrainedSpiking) -> onnx.ModelProto:
    """The trained spiking graph as an ONNX model carrying `declaration` in its metadata."""
    writer = _Writer(graph)
    for x in graph.inputs:
        writer.names[id(x)] = x.name
    for op in graph.ops:
        writer.op(op)
    outputs = [_value_info(writer.names[id(v)], v) for v in graph.outputs]
    proto = helper.make_graph(writer.nodes, graph.name, [_value_info(x.name, x)
                                                        for x in graph.inputs],
                              outputs, writer.inits)
    model = helper.make_model(proto, producer_name="snncc.training",
                              opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION)
    helper.set_model_props(model, {METADATA_KEY: json.dumps(declaration.to_json(),
                                                            separators=(",", ":"))})
    onnx.checker.check_model(model, full_check=True)
    return model


def export_spiking(graph: Graph, declaration: TrainedSpiking, path: str | Path) -> Path:
    """Write the model to `path` atomically (nothing half-written on failure)."""
    model = spiking_onnx(graph, declaration)
    write_atomic(Path(path), model.SerializeToString())
    return Path(path)
