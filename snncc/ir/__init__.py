"""snncc's IR: an SSA graph of typed ops, its text format, and its weight store."""

from snncc.ir import ops
from snncc.ir.attributes import WeightRef
from snncc.ir.graph import Graph, GraphAttrs, Value
from snncc.ir.io import load_ir, save_ir
from snncc.ir.location import FileLoc, FusedLoc, Location, OnnxLoc, UnknownLoc, fuse
from snncc.ir.op import OP_REGISTRY, IRError, NoAttrs, Op, OpaqueOp, register_op
from snncc.ir.parser import ParseError, parse_graph
from snncc.ir.printer import print_graph
from snncc.ir.types import TensorType
from snncc.ir.weights import WeightStore

__all__ = [
    "OP_REGISTRY",
    "FileLoc",
    "FusedLoc",
    "Graph",
    "GraphAttrs",
    "IRError",
    "Location",
    "NoAttrs",
    "OnnxLoc",
    "Op",
    "OpaqueOp",
    "ParseError",
    "TensorType",
    "UnknownLoc",
    "Value",
    "WeightRef",
    "WeightStore",
    "fuse",
    "load_ir",
    "ops",
    "parse_graph",
    "print_graph",
    "register_op",
    "save_ir",
]
