"""Parse the IR text format back into a Graph, with located errors.

Every error is a ParseError whose message is `file:line:col: message`, the source line and
a caret — for syntax errors (from lark) and for semantic ones (unknown op, undefined value,
wrong types) alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from snncc.diagnostics import SnnccError, located
from snncc.ir import ops as _builtin_ops  # noqa: F401  (registers the built-in op kinds)
from snncc.ir.attributes import WeightRef, bind_attrs
from snncc.ir.graph import Graph, GraphAttrs, Value
from snncc.ir.location import FileLoc, FusedLoc, Location, OnnxLoc
from snncc.ir.op import OP_REGISTRY, IRError, Op, OpaqueOp
from snncc.ir.printer import FORMAT_VERSION, MAGIC
from snncc.ir.types import TensorType
from snncc.ir.validate import attrs_problem, properties_problem, weights_problem
from snncc.ir.weights import WeightStore

_LEADING_COMMENTS = re.compile(r"\A(?:\s*//[^\n]*\n)*\s*")
WeightsLoader = Callable[[str, str], WeightStore]

_TOKEN_WORDS = {
    "VALUE": "a value like %x", "GLOBAL": "a name like @unet",
    "OPNAME": "an op name like syn.conv2d",
    "NAME": "an attribute name", "TYPE": "a type like tensor<1x3xf32>", "FLOAT": "a float",
    "INT": "an integer", "STRING": 'a "string"', "LPAR": "'('", "RPAR": "')'", "LBRACE": "'{'",
    "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "COLON": "':'",
    "EQUAL": "'='", "__ANON_0": "'->'", "$END": "end of input",
}


class ParseError(SnnccError):
    """Malformed IR text; the message is located and shows the offending line."""


def _grammar() -> Lark:
    text = resources.files("snncc.ir").joinpath("snnir.lark").read_text()
    return Lark(text, parser="lalr", propagate_positions=True, maybe_placeholders=False)


_PARSER: Lark | None = None


def _lark() -> Lark:
    global _PARSER
    if _PARSER is None:
        _PARSER = _grammar()
    return _PARSER


def _expected(err: UnexpectedInput) -> str:
    names = sorted({_TOKEN_WORDS.get(t, repr(t.lower()) if t.isupper() else t)
                    for t in getattr(err, "expected", None) or getattr(err, "allowed", ())})
    return f"; expected {', '.join(names)}" if names else ""


class _Builder:
    """Turns the lark tree into a Graph, checking names, types and op kinds as it goes."""

    def __init__(self, text: str, file: str, loader: WeightsLoader | None,
                 allow_unregistered: bool) -> None:
        self.text, self.file = text, file
        self.loader, self.allow_unregistered = loader, allow_unregistered
        self.values: dict[str, Value] = {}

    def error(self, node: Token | Tree, message: str) -> ParseError:
        line = node.line if isinstance(node, Token) else node.meta.line
        col = node.column if isinstance(node, Token) else node.meta.column
        return ParseError(located(self.file, line, col, f"error: {message}", self.text))

    def build(self, tree: Tree) -> Graph:
        header = tree.children[0]
        version = header.children[0]
        if int(version) != FORMAT_VERSION:
            raise self.error(version, f"IR format version {version} is not supported (this snncc "
                             f"reads version {FORMAT_VERSION}); re-create the dump with this "
                             "snncc from the original model")
        weights = WeightStore()
        graph_tree = tree.children[-1]
        if len(tree.children) == 3:
            file_tok, sha_tok = tree.children[1].children
            if self.loader is not None:
                try:
                    weights = self.loader(json.loads(file_tok), json.loads(sha_tok))
                except SnnccError as err:
                    raise self.error(file_tok, str(err)) from None
                problem = weights_problem(weights)
                if problem:
                    raise self.error(file_tok, f"{json.loads(file_tok)}: {problem}")
        graph = self.graph(graph_tree, weights)
        problem = properties_problem(graph)
        if problem:
            raise self.error(graph_tree, problem)
        return graph

    def type_of(self, tok: Token) -> TensorType:
        try:
            return TensorType.parse(str(tok))
        except ValueError as err:
            raise self.error(tok, str(err)) from None

    def graph(self, tree: Tree, weights: WeightStore) -> Graph:
        name_tok, args, result_types, *rest = tree.children
        graph = Graph(str(name_tok)[1:], weights=weights)
        for arg in args.children:
            value = Value(str(arg.children[0])[1:], self.type_of(arg.children[1]))
            self.define(arg.children[0], value)
            graph.inputs.append(value)
        if rest and isinstance(rest[0], Tree) and rest[0].data == "attr_dict":
            try:
                graph.attrs = bind_attrs(GraphAttrs, self.attr_dict(rest[0]))
            except ValueError as err:
                raise self.error(rest[0], f"graph attributes: {err}") from None
            problem = attrs_problem(graph.attrs)
            if problem:
                raise self.error(rest[0], f"graph attributes: {problem}")
            rest = rest[1:]
        for node in rest[:-1]:
            graph.ops.append(self.op(node, weights))
        ret = rest[-1]
        graph.outputs = [self.use(tok) for tok in ret.children]
        declared = [self.type_of(t) for t in result_types.children]
        actual = [v.type for v in graph.outputs]
        if declared != actual:
            raise self.error(ret, f"returns ({', '.join(map(str, actual))}) but the signature "
                             f"declares ({', '.join(map(str, declared))})")
        return graph

    def define(self, tok: Token, value: Value) -> None:
        if value.name in self.values:
            raise self.error(tok, f"%{value.name} is defined twice (SSA: one definition a name)")
        self.values[value.name] = value

    def use(self, tok: Token) -> Value:
        name = str(tok)[1:]
        if name not in self.values:
            raise self.error(tok, f"%{name} is used before it is defined")
        return self.values[name]

    def op(self, tree: Tree, weights: WeightStore) -> Op:
        result_tok, name_tok, operands, *rest = tree.children
        attrs: dict[str, Any] = {}
        if isinstance(rest[0], Tree) and rest[0].data == "attr_dict":
            attrs = self.attr_dict(rest.pop(0))
        in_types_tree, result_type_tok, *loc_tree = rest
        inputs = [self.use(tok) for tok in operands.children]
        in_types = [self.type_of(t) for t in in_types_tree.children]
        if len(in_types) != len(inputs):
            raise self.error(in_types_tree, f"{len(inputs)} operand(s) but {len(in_types)} "
                             "type(s) in the signature")
        for tok, value, declared in zip(operands.children, inputs, in_types, strict=True):
            if value.type != declared:
                raise self.error(tok, f"%{value.name} has type {value.type}, the signature "
                                 f"says {declared}")
        loc = self.loc(loc_tree[0].children[0]) if loc_tree else FileLoc(
            self.file, tree.meta.line, tree.meta.column, implicit=True)
        result = Value(str(result_tok)[1:], self.type_of(result_type_tok))
        op = self.make_op(name_tok, inputs, attrs, result, loc)
        try:
            op.verify(weights)
        except IRError as err:
            raise self.error(name_tok, f"{op.name}: {err.args[0]}") from None
        self.define(result_tok, result)
        return op

    def make_op(self, name_tok: Token, inputs: list[Value], attrs: dict[str, Any],
                result: Value, loc: Location) -> Op:
        name = str(name_tok)
        cls = OP_REGISTRY.get(name)
        if cls is None:
            if self.allow_unregistered:
                return OpaqueOp(name, inputs, attrs, result, loc)
            from snncc.diagnostics import closest

            raise self.error(name_tok, f"unknown op '{name}'{closest(name, OP_REGISTRY.keys())}; "
                             "if a plugin defines it, install the plugin or pass "
                             "--allow-unregistered")
        try:
            typed = bind_attrs(cls.Attrs, attrs)
        except ValueError as err:
            raise self.error(name_tok, f"{name}: {err}") from None
        return cls(inputs, typed, result, loc)

    def attr_dict(self, tree: Tree) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attr in tree.children:
            key, value = attr.children
            if str(key) in out:
                raise self.error(key, f"attribute '{key}' given twice")
            out[str(key)] = self.value(value)
        return out

    def value(self, node: Tree) -> Any:
        kind = node.data
        if kind == "list":
            return [self.value(v) for v in node.children]
        if kind == "true":
            return True
        if kind == "false":
            return False
        if kind == "none":
            return None
        tok = node.children[0]
        if kind == "int":
            return int(tok)
        if kind == "float":
            return float(tok)
        if kind == "string":
            return json.loads(tok)
        if str(tok) != "@w":
            raise self.error(tok, f"'{tok}[...]' is not a weight reference; write @w[\"name\"]")
        return WeightRef(json.loads(node.children[1]))

    def loc(self, node: Tree) -> Location:
        parts = node.children
        if node.data == "onnx_loc":
            return OnnxLoc(*(json.loads(p) for p in parts))
        if node.data == "file_loc":
            return FileLoc(json.loads(parts[0]), int(parts[1]), int(parts[2]))
        return FusedLoc(tuple(self.loc(p) for p in parts))


def parse_graph(
    text: str,
    file: str = "<string>",
    *,
    weights_loader: WeightsLoader | None = None,
    allow_unregistered: bool = False,
) -> Graph:
    """Parse IR text. `weights_loader(file, sha256)` provides the weight store named in the
    header; without one, the graph gets an empty store (fine for ops without weights)."""
    body = _LEADING_COMMENTS.sub("", text)
    if not body.startswith(MAGIC):
        first = body.splitlines()[0] if body.strip() else "(empty)"
        raise ParseError(located(file, 1, 1, f"error: not an snncc IR file (it starts with "
                                 f"{first[:40]!r}, expected '{MAGIC} {FORMAT_VERSION}')", text))
    try:
        tree = _lark().parse(text)
    except (UnexpectedToken, UnexpectedCharacters, UnexpectedEOF) as err:
        if isinstance(err, UnexpectedEOF) or getattr(err, "token", None) == "" or (
                isinstance(err, UnexpectedToken) and err.token.type == "$END"):
            line = len(text.splitlines()) or 1
            col = len(text.splitlines()[-1]) + 1 if text.splitlines() else 1
            what = "unexpected end of input"
        else:
            line, col = err.line, err.column
            got = err.token if isinstance(err, UnexpectedToken) else text[err.pos_in_stream]
            what = f"unexpected {str(got)!r}"
        raise ParseError(located(file, line, col, f"error: {what}{_expected(err)}", text)) from None
    return _Builder(text, file, weights_loader, allow_unregistered).build(tree)


def sidecar_loader(ir_path: Path) -> WeightsLoader:
    """Load the weights named in the header from beside `ir_path`, checking the sha256."""

    def load(name: str, sha256: str) -> WeightStore:
        return WeightStore.load(ir_path.parent / name, sha256, referenced_by=str(ir_path))

    return load
