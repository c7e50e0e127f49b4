"""The graph: SSA values, ops in topological order, graph attributes and weights."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from snncc.ir.attributes import OMIT_DEFAULT
from snncc.ir.location import Location
from snncc.ir.op import IRError, Op
from snncc.ir.types import TensorType
from snncc.ir.weights import WeightStore

_NAME_OK = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*|[0-9]+")


class Value:
    """An SSA value: a graph input or the result of one op."""

    def __init__(self, name: str, type: TensorType, owner: Op | None = None) -> None:
        self.name = name
        self.type = type
        self.owner = owner

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


@dataclass(frozen=True)
class GraphAttrs:
    """Graph-wide facts: simulation step, timestep count, the IR properties that hold, and
    (`trained`) where the weights or thresholds of a network trained through its spiking
    dynamics came from (trained-spiking, distill-spiking)."""

    dt: float = 0.001
    timesteps: int = 100
    properties: tuple[str, ...] = ()
    trained: str = field(default="", metadata=OMIT_DEFAULT)


def sanitize_name(hint: str) -> str:
    """A printable SSA name from any hint (ONNX tensor names contain '/' and ':')."""
    name = re.sub(r"[^A-Za-z0-9_.]+", "_", hint).strip("_.") or "v"
    return name if _NAME_OK.fullmatch(name) else f"v_{name}"


@dataclass
class Graph:
    """One model as an SSA graph. Ops are kept in topological order."""

    name: str
    inputs: list[Value] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    outputs: list[Value] = field(default_factory=list)
    attrs: GraphAttrs = field(default_factory=GraphAttrs)
    weights: WeightStore = field(default_factory=WeightStore)

    # construction -----------------------------------------------------------------
    def _names(self) -> set[str]:
        return {v.name for v in self.inputs} | {op.result.name for op in self.ops}

    def fresh_name(self, hint: str) -> str:
        base = sanitize_name(hint)
        taken = self._names()
        name, i = base, 1
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        return name

    def add_input(self, name: str, type: TensorType) -> Value:
        value = Value(self.fresh_name(name), type)
        self.inputs.append(value)
        return value

    def add(
        self,
        op_cls: type[Op],
        inputs: Sequence[Value],
        attrs: Any = None,
        *,
        name: str = "v",
        loc: Location | None = None,
        before: Op | None = None,
    ) -> Value:
        """Create an op of kind `op_cls`, infer its type, insert it; return its result.

        Appended at the end, or placed just before `before` when rewriting.
        """
        attrs = op_cls.Attrs() if attrs is None else attrs
        result = Value(self.fresh_name(name), TensorType(()))
        op = op_cls(inputs, attrs, result, loc)
        op.check_arity()
        try:
            result.type = op_cls.infer([v.type for v in inputs], attrs, self.weights)
        except IRError as err:
            raise IRError(str(err), op) from None
        index = self.ops.index(before) if before is not None else len(self.ops)
        self.ops.insert(index, op)
        return result

    # queries ----------------------------------------------------------------------
    def users(self, value: Value) -> list[Op]:
        return [op for op in self.ops if any(v is value for v in op.inputs)]

    def use_counts(self) -> dict[int, int]:
        """id(value) → number of uses, counting graph outputs."""
        counts: dict[int, int] = {}
        for v in [x for op in self.ops for x in op.inputs] + self.outputs:
            counts[id(v)] = counts.get(id(v), 0) + 1
        return counts

    def ops_of(self, op_cls: type[Op]) -> Iterator[Op]:
        return (op for op in self.ops if isinstance(op, op_cls))

    def with_properties(self, *props: str, drop: Sequence[str] = ()) -> None:
        keep = [p for p in self.attrs.properties if p not in drop]
        merged = tuple(sorted(set(keep) | set(props)))
        self.attrs = dataclasses.replace(self.attrs, properties=merged)

    # rewriting --------------------------------------------------------------------
    def replace_uses(self, old: Value, new: Value) -> None:
        for op in self.ops:
            op.inputs = [new if v is old else v for v in op.inputs]
        self.outputs = [new if v is old else v for v in self.outputs]

    def erase(self, op: Op) -> None:
        self.ops.remove(op)

    def prune_weights(self) -> None:
        """Drop weights no op refers to any more."""
        self.weights.retain({ref.name for op in self.ops for ref in op.weight_refs()})

    # checking ---------------------------------------------------------------------
    def verify(self) -> None:
        """SSA (one definition per name), topological order, per-op checks, outputs defined."""
        defined: dict[str, Value] = {}
        for v in self.inputs:
            if v.name in defined:
                raise IRError(f"graph input %{v.name} is defined twice")
            defined[v.name] = v
        for op in self.ops:
            for v in op.inputs:
                if defined.get(v.name) is not v:
                    raise IRError(f"uses %{v.name} before it is defined", op)
            op.verify(self.weights)
            if op.result.name in defined:
                raise IRError(f"%{op.result.name} is defined twice", op)
            defined[op.result.name] = op.result
        for v in self.outputs:
            if defined.get(v.name) is not v:
                raise IRError(f"graph output %{v.name} is not defined")
        if not self.outputs:
            raise IRError(f"graph @{self.name} returns nothing")
