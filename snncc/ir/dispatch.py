"""Dispatch on op kind through a registry, as nengo's `Builder.register` does: each consumer
of the IR (the analog interpreter, the spiking simulator, the Loihi lowering, the nengo
builder) keeps one `OpTable` of functions keyed by op class, filled by a decorator beside the
function, instead of an `isinstance` chain."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from snncc.ir.op import Op

T = TypeVar("T")


class OpTable(Generic[T]):
    """Entries keyed by op class. Lookup walks the op's class hierarchy, so an entry for a
    kind (`Synapse`, `Neurons`) serves every op class of that kind without its own entry."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[type[Op], T] = {}

    def add(self, entry: T, *op_classes: type[Op]) -> None:
        for cls in op_classes:
            if cls in self._entries:
                raise ValueError(f"{self.what}: {cls.__name__} registered twice")
            self._entries[cls] = entry

    def register(self, *op_classes: type[Op]) -> Callable[[T], T]:
        """Decorator: the decorated object is the entry for `op_classes`."""

        def wrap(entry: T) -> T:
            self.add(entry, *op_classes)
            return entry

        return wrap

    def get(self, op: Op | type[Op]) -> T | None:
        """The entry for the op's class or its nearest registered base, else None."""
        cls = op if isinstance(op, type) else type(op)
        for base in cls.__mro__:
            if base in self._entries:
                return self._entries[base]
        return None

    def __getitem__(self, op: Op | type[Op]) -> T:
        entry = self.get(op)
        if entry is None:
            name = op.__name__ if isinstance(op, type) else op.name
            raise KeyError(f"no {self.what} for {name}")
        return entry

    def __contains__(self, op: Op | type[Op]) -> bool:
        return self.get(op) is not None

    def __iter__(self) -> Iterator[type[Op]]:
        return iter(self._entries)
