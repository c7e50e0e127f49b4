"""The lowering registry and the context each lowering gets.

A lowering turns one ONNX node into IR ops (or into a constant) and returns its first
output. Lowerings are registered per op type for a range of op versions (the `since_version`
of the op's schema at the model's opset), so a semantic change between opsets is a second
registration, not an `if` inside the first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper

from snncc.frontend.onnx.errors import Unsupported
from snncc.ir.attributes import WeightRef
from snncc.ir.graph import Graph, Value
from snncc.ir.location import OnnxLoc
from snncc.ir.op import Op

Tensor = Value | np.ndarray
Lowering = Callable[["NodeContext"], Tensor]


@dataclass(frozen=True)
class Rule:
    since: int
    until: int | None
    lower: Lowering


LOWERINGS: dict[str, list[Rule]] = {}


def lowering(*op_types: str, since: int = 1, until: int | None = None):
    """Decorator: register a lowering for op types, for op versions since..until."""

    def wrap(fn: Lowering) -> Lowering:
        for op_type in op_types:
            LOWERINGS.setdefault(op_type, []).append(Rule(since, until, fn))
        return fn

    return wrap


def find_lowering(op_type: str, version: int) -> Lowering | None:
    for rule in LOWERINGS.get(op_type, []):
        if rule.since <= version and (rule.until is None or version <= rule.until):
            return rule.lower
    return None


@dataclass
class ImportState:
    """What the lowerings share: the graph being built and the ONNX tensors seen so far."""

    graph: Graph
    file_name: str
    maxpool: str
    env: dict[str, Tensor] = field(default_factory=dict)
    weight_refs: dict[str, WeightRef] = field(default_factory=dict)
    approximated: list[str] = field(default_factory=list)


@dataclass
class NodeContext:
    """One node being lowered: typed access to its attributes and inputs, and `emit`."""

    node: onnx.NodeProto
    state: ImportState
    loc: OnnxLoc

    @property
    def graph(self) -> Graph:
        return self.state.graph

    def attr(self, name: str, default: Any = None) -> Any:
        for a in self.node.attribute:
            if a.name == name:
                value = helper.get_attribute_value(a)
                if isinstance(value, bytes):
                    return value.decode()
                return list(value) if isinstance(value, (list, tuple)) else value
        return default

    def has(self, index: int) -> bool:
        return index < len(self.node.input) and self.node.input[index] != ""

    def is_const(self, index: int) -> bool:
        return self.has(index) and isinstance(self.state.env[self.node.input[index]],
                                              np.ndarray)

    def value(self, index: int) -> Value:
        """The computed (non-constant) tensor at input `index`."""
        got = self.state.env[self.node.input[index]]
        if not isinstance(got, Value):
            raise Unsupported(f"input {index} ('{self.node.input[index]}') is a constant, "
                              "where snncc expects the tensor the network computes")
        return got

    def const(self, index: int) -> np.ndarray | None:
        """The constant at input `index`; None if the input is absent or empty."""
        if not self.has(index):
            return None
        got = self.state.env[self.node.input[index]]
        if not isinstance(got, np.ndarray):
            raise Unsupported(f"input {index} ('{self.node.input[index]}') is computed at run "
                              "time; snncc needs it to be a constant (an initializer)",
                              "export with constant weights and shapes")
        return got if got.size else None

    def weight(self, index: int) -> WeightRef:
        """Constant input `index` as float32 weights named after the ONNX tensor (stored once
        however many nodes use it)."""
        name = self.node.input[index]
        if name not in self.state.weight_refs:
            self.state.weight_refs[name] = self.new_weight(name, self.const(index))
        return self.state.weight_refs[name]

    def new_weight(self, hint: str, array: np.ndarray) -> WeightRef:
        return self.graph.weights.add(hint, np.asarray(array, dtype=np.float32))

    def emit(self, op_cls: type[Op], inputs: Sequence[Value], attrs: Any = None,
             suffix: str = "") -> Value:
        """Add an op at this node's location, named after its first output.

        PyTorch names every tensor '<node>_output_0'; the suffix adds nothing to the name.
        """
        hint = self.node.output[0].removesuffix("_output_0") + suffix
        return self.graph.add(op_cls, inputs, attrs, name=hint, loc=self.loc)


def normalize_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise Unsupported(f"axis {axis} is out of range for rank {rank}")
    return axis % rank
