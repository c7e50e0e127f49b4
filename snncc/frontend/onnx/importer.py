"""The ONNX importer: walks the nodes in order and lowers each into analog IR.

Constants are folded as they appear: a node whose inputs are all constants is evaluated
with onnx's reference evaluator, and shape queries of computed tensors are constants once
the input shapes are bound. Every other node goes through the lowering registry. A node
that cannot be lowered does not stop the import: its outputs are marked unavailable, the
walk goes on, and all refused nodes are reported together in one table.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from snncc.diagnostics import UsageError
from snncc.frontend.onnx import lower_conv, lower_math, lower_resize, lower_tensor
from snncc.frontend.onnx.context import ImportState, NodeContext, Tensor, find_lowering
from snncc.frontend.onnx.errors import (
    MAXPOOL_TYPES,
    OnnxImportError,
    OnnxImportWarning,
    Refusal,
    Unsupported,
    UnsupportedModelError,
    advice,
)
from snncc.frontend.onnx.loader import LoadedModel, load_model
from snncc.ir.graph import Graph, Value
from snncc.ir.location import OnnxLoc
from snncc.ir.op import IRError, OpaqueOp
from snncc.ir.types import TensorType

LOWERING_MODULES = (lower_conv, lower_math, lower_resize, lower_tensor)  # they register
RANDOM_OPS = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform",
                        "RandomUniformLike", "Multinomial", "Bernoulli"})


def import_onnx(
    path: Path | str,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    maxpool: str = "error",
) -> Graph:
    """Read an ONNX model into analog IR that computes exactly what the model computes.

    `input_shapes` binds dynamic input dimensions (CLI `--input-shape NAME=1,1,64,64`).
    `maxpool="avg"` compiles MaxPool as average pooling and warns (OnnxImportWarning);
    the default refuses it. Raises OnnxImportError for unreadable or inconsistent files and
    UnsupportedModelError listing every node that cannot be compiled.
    """
    if maxpool not in ("error", "avg"):
        raise UsageError(f"maxpool must be 'error' or 'avg', got '{maxpool}'")
    path = Path(path)
    return _Importer(load_model(path, input_shapes), path.name, maxpool).run()


def _graph_name(raw: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", raw).strip("_.-")
    return name if re.match(r"[A-Za-z_]", name) else f"g_{name}"


class _Skipped(Exception):
    """A node downstream of a refused node: not lowered, not reported on its own."""


class _Importer:
    def __init__(self, loaded: LoadedModel, file_name: str, maxpool: str) -> None:
        self.loaded = loaded
        self.onnx_graph = loaded.model.graph
        graph = Graph(_graph_name(self.onnx_graph.name or Path(file_name).stem))
        self.state = ImportState(graph, file_name, maxpool)
        self.refusals: list[Refusal] = []
        self.unavailable: set[str] = set()
        self.used = {name for node in self.onnx_graph.node for name in node.input}
        self.used |= {o.name for o in self.onnx_graph.output}

    def run(self) -> Graph:
        graph, env = self.state.graph, self.state.env
        for name, shape in self.loaded.inputs:
            env[name] = graph.add_input(name, TensorType(shape))
        env.update(self.loaded.constants)
        for index, node in enumerate(self.onnx_graph.node):
            self._node(index, node)
        if self.refusals:
            graph.outputs = [env[o.name] for o in self.onnx_graph.output
                             if isinstance(env.get(o.name), Value)]
            raise UnsupportedModelError(self.loaded.file, self.refusals, graph)
        for out in self.onnx_graph.output:
            value = env[out.name]
            if not isinstance(value, Value):
                raise OnnxImportError(f"{self.loaded.file}: graph output '{out.name}' is a "
                                      "constant: it does not depend on the model's input")
            graph.outputs.append(value)
        if self.state.approximated:
            nodes = ", ".join(f"'{n}'" for n in self.state.approximated)
            warnings.warn(f"{self.loaded.file}: max pooling node(s) {nodes} compiled as average "
                          "pooling (maxpool='avg'); the outputs differ from the ONNX model's "
                          "unless it was trained with average pooling", OnnxImportWarning,
                          stacklevel=3)
        graph.verify()
        return graph

    def _node(self, index: int, node: onnx.NodeProto) -> None:
        label = node.name or f"#{index}"
        loc = OnnxLoc(self.state.file_name, label, node.op_type)
        try:
            results = self._lower(node, loc)
        except _Skipped:
            self.unavailable.update(node.output)
            return
        except Unsupported as err:
            self.refusals.append(Refusal(label, node.op_type, err.why,
                                         err.todo or advice(node.op_type)[1]))
            self._placeholder(node, loc, err.why)
            return
        except IRError as err:  # attributes the checker lets through, e.g. group = 0
            raise OnnxImportError(f"{self.loaded.file}: node '{label}' ({node.op_type}) is "
                                  f"inconsistent: {err.args[0]}; export the model again"
                                  ) from None
        for name, tensor in results:
            self.state.env[name] = tensor
            want = self.loaded.shapes.get(name)
            if isinstance(tensor, Value) and want is not None and want != tensor.type.shape:
                raise RuntimeError(f"internal error: snncc computes shape {tensor.type} for "
                                   f"'{name}' of ONNX node '{label}' ({node.op_type}), ONNX "
                                   f"shape inference {want}")

    def _placeholder(self, node: onnx.NodeProto, loc: OnnxLoc, why: str) -> None:
        """Stand in for a refused node with an opaque op of its inferred output shape, so
        that the nodes after it are still lowered; without a shape, its outputs are
        unavailable and the nodes after it are skipped."""
        env, graph = self.state.env, self.state.graph
        shape = self.loaded.shapes.get(node.output[0])
        if shape is None:
            self.unavailable.update(node.output)
            return
        inputs = [env[n] for n in node.input if n and isinstance(env.get(n), Value)]
        hint = node.output[0].removesuffix("_output_0")
        result = Value(graph.fresh_name(hint), TensorType(shape))
        graph.ops.append(OpaqueOp(f"onnx.{node.op_type}", inputs, {"refused": why}, result,
                                  loc))
        env[node.output[0]] = result
        self.unavailable.update(node.output[1:])

    def _lower(self, node: onnx.NodeProto, loc: OnnxLoc) -> list[tuple[str, Tensor]]:
        if node.domain not in ("", "ai.onnx"):
            raise Unsupported(f"op domain '{node.domain}' is not standard ONNX",
                              "export with standard ONNX ops only")
        version = onnx.defs.get_schema(node.op_type, self.loaded.opset, node.domain).since_version
        refused = node.op_type in MAXPOOL_TYPES and self.state.maxpool == "error"
        lower = None if refused else find_lowering(node.op_type, version)
        missing = [name for name in node.input if name in self.unavailable]
        if missing:
            if lower is None:
                raise Unsupported(*advice(node.op_type))
            self._stand_in(missing)
        present = [name for name in node.input if name]
        if node.op_type not in RANDOM_OPS and all(
                isinstance(self.state.env[name], np.ndarray) for name in present):
            return self._fold(node, present)
        if lower is None:
            raise Unsupported(*advice(node.op_type))
        extra = [name for name in node.output[1:] if name in self.used]
        if extra:
            raise Unsupported(f"output(s) {', '.join(extra)} are used; snncc computes only the "
                              "first output of this op")
        return [(node.output[0], lower(NodeContext(node, self.state, loc)))]

    def _stand_in(self, names: list[str]) -> None:
        """Inputs of refused nodes as placeholder inputs of their inferred shapes, so that
        the nodes below are still checked and every refusal is listed in one run (the
        graph is discarded anyway); without a known shape the node is skipped."""
        shapes = [self.loaded.shapes.get(name) for name in names]
        if any(shape is None for shape in shapes):
            raise _Skipped
        for name, shape in zip(names, shapes, strict=True):
            self.state.env[name] = self.state.graph.add_input(name, TensorType(shape))
            self.unavailable.discard(name)

    def _fold(self, node: onnx.NodeProto, present: list[str]) -> list[tuple[str, Tensor]]:
        feeds = {name: self.state.env[name] for name in present}
        try:
            evaluator = ReferenceEvaluator(node, opsets={"": self.loaded.opset})
            outputs = evaluator.run(None, feeds)
        except Exception as err:  # the reference evaluator raises many kinds of errors
            raise Unsupported(f"cannot evaluate this constant expression: {err}") from err
        return [(name, np.asarray(out)) for name, out in zip(node.output, outputs, strict=False)
                if name]
