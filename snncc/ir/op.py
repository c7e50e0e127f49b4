"""Ops: one class per kind, registered by name, with typed attributes and type inference.

An op kind declares its text name, a frozen `Attrs` dataclass and `infer()`, which checks
its inputs and attributes and returns the result type. `verify()` re-runs inference and
compares with the stored type, so a graph built by hand, parsed from text or rewritten by a
pass is checked the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from snncc.ir.attributes import attr_pairs
from snncc.ir.location import Location, UnknownLoc
from snncc.ir.types import TensorType

if TYPE_CHECKING:
    from snncc.ir.graph import Value
    from snncc.ir.weights import WeightStore


class IRError(Exception):
    """An invalid graph. Carries the op (if any) so callers can report its location."""

    def __init__(self, message: str, op: Op | None = None) -> None:
        super().__init__(message)
        self.op = op

    def __str__(self) -> str:
        msg = super().__str__()
        if self.op is None:
            return msg
        return f"{self.op.describe()}: {msg}"


@dataclass(frozen=True)
class NoAttrs:
    """For ops without attributes."""


OP_REGISTRY: dict[str, type[Op]] = {}


def register_op(cls: type[Op]) -> type[Op]:
    """Class decorator: make an op kind known to the parser and to `snncc inspect`."""
    if cls.name in OP_REGISTRY and OP_REGISTRY[cls.name] is not cls:
        other = OP_REGISTRY[cls.name]
        raise ValueError(
            f"op name '{cls.name}' registered twice: {other.__module__}.{other.__qualname__} "
            f"and {cls.__module__}.{cls.__qualname__}"
        )
    OP_REGISTRY[cls.name] = cls
    return cls


class Op:
    """One SSA operation with a single result.

    Subclasses set `name`, `Attrs`, `min_inputs` / `max_inputs` (None = variadic), and
    implement `infer`.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    Attrs: ClassVar[type] = NoAttrs
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1

    def __init__(
        self,
        inputs: Sequence[Value],
        attrs: Any,
        result: Value,
        loc: Location | None = None,
    ) -> None:
        self.inputs: list[Value] = list(inputs)
        self.attrs = attrs
        self.result = result
        self.loc: Location = loc or UnknownLoc()
        result.owner = self

    @classmethod
    def infer(cls, in_types: list[TensorType], attrs: Any, weights: WeightStore) -> TensorType:
        """Check inputs and attributes; return the result type. Raise IRError if invalid."""
        raise NotImplementedError

    def attr_items(self) -> list[tuple[str, Any]]:
        return attr_pairs(self.attrs)

    def replace_attrs(self, **changes: Any) -> None:
        self.attrs = dataclasses.replace(self.attrs, **changes)

    def check_arity(self) -> None:
        n = len(self.inputs)
        hi = self.max_inputs
        if n < self.min_inputs or (hi is not None and n > hi):
            want = (
                f"{self.min_inputs}" if hi == self.min_inputs
                else f"at least {self.min_inputs}" if hi is None
                else f"{self.min_inputs} to {hi}"
            )
            raise IRError(f"takes {want} input(s), got {n}", self)

    def verify(self, weights: WeightStore) -> None:
        """Arity, attributes and result type; raises IRError naming this op."""
        self.check_arity()
        try:
            inferred = self.infer([v.type for v in self.inputs], self.attrs, weights)
        except IRError as err:
            raise IRError(str(err), self) from None
        except KeyError as err:
            raise IRError(f"weight {err} is not in the weight store", self) from None
        if inferred != self.result.type:
            raise IRError(f"result type {self.result.type} but the op computes {inferred}", self)

    def describe(self) -> str:
        """Where the op came from and what it is, for messages: `LOC: NAME '%RESULT'`."""
        return f"{self.loc.describe()}: {self.name} '%{self.result.name}'"

    def weight_refs(self) -> list[Any]:
        """Every WeightRef among the attributes."""
        from snncc.ir.attributes import WeightRef

        return [v for _, v in self.attr_items() if isinstance(v, WeightRef)]

    def __repr__(self) -> str:
        return f"<{self.name} %{self.result.name}>"


class OpaqueOp(Op):
    """An op whose name is not registered (kept with `--allow-unregistered`).

    Attributes are kept as written and the declared result type is trusted, so plugin ops
    round-trip through text even when the plugin is not installed.
    """

    max_inputs = None
    min_inputs = 0

    def __init__(
        self,
        op_name: str,
        inputs: Sequence[Value],
        attrs: dict[str, Any],
        result: Value,
        loc: Location | None = None,
    ) -> None:
        super().__init__(inputs, attrs, result, loc)
        self.op_name = op_name

    @property  # type: ignore[override]
    def name(self) -> str:
        return self.op_name

    def attr_items(self) -> list[tuple[str, Any]]:
        return list(self.attrs.items())

    def verify(self, weights: WeightStore) -> None:
        for ref in self.weight_refs():
            if ref not in weights:
                raise IRError(f"weight {ref} is not in the weight store", self)
