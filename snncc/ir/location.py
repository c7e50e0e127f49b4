"""Where an op came from, so that every error can point at the user's own input.

Printed forms (omitted for unknown locations and for positions the parser inferred):

    loc("unet.onnx":"/enc1/Conv":"Conv")     an ONNX node: file, node name, op type
    loc("model.snnir":12:3)                  a line and column of an IR text file
    loc(fused["unet.onnx":"/a":"Conv", ...]) ops that a pass merged
"""

from __future__ import annotations

import json
from dataclasses import dataclass


class Location:
    """Base of all locations."""

    def describe(self) -> str:
        """Human wording used in error messages."""
        raise NotImplementedError

    def inner(self) -> str:
        """The printed form without the surrounding `loc(...)`."""
        raise NotImplementedError


@dataclass(frozen=True)
class UnknownLoc(Location):
    def describe(self) -> str:
        return "<unknown location>"

    def inner(self) -> str:
        return ""


@dataclass(frozen=True)
class OnnxLoc(Location):
    file: str
    node: str
    op_type: str

    def describe(self) -> str:
        return f"{self.file}: ONNX node '{self.node}' ({self.op_type})"

    def inner(self) -> str:
        return f"{json.dumps(self.file)}:{json.dumps(self.node)}:{json.dumps(self.op_type)}"


@dataclass(frozen=True)
class FileLoc(Location):
    """A position in IR text. `implicit` positions come from the parser, not the text,
    and are not printed (so print → parse → print stays byte-identical)."""

    file: str
    line: int
    col: int
    implicit: bool = False

    def describe(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def inner(self) -> str:
        return f"{json.dumps(self.file)}:{self.line}:{self.col}"


@dataclass(frozen=True)
class FusedLoc(Location):
    locs: tuple[Location, ...]

    def describe(self) -> str:
        return "fused from " + "; ".join(loc.describe() for loc in self.locs)

    def inner(self) -> str:
        return "fused[" + ", ".join(loc.inner() for loc in self.locs) + "]"


def fuse(*locs: Location) -> Location:
    """One location for an op made from several: flattens nested fusions, drops unknowns."""
    flat: list[Location] = []
    for loc in locs:
        parts = loc.locs if isinstance(loc, FusedLoc) else (loc,)
        flat.extend(p for p in parts if not isinstance(p, UnknownLoc) and p not in flat)
    if not flat:
        return UnknownLoc()
    return flat[0] if len(flat) == 1 else FusedLoc(tuple(flat))


def print_loc(loc: Location) -> str:
    """The ` loc(...)` suffix of an op line, or '' when nothing is worth printing."""
    if isinstance(loc, UnknownLoc) or (isinstance(loc, FileLoc) and loc.implicit):
        return ""
    return f" loc({loc.inner()})"


def onnx_node(loc: Location) -> str | None:
    """The ONNX node name a location names, or None (fused, unknown or not from ONNX); the
    key by which stats files and trained-SNN declarations name a layer."""
    return loc.node if isinstance(loc, OnnxLoc) else None
