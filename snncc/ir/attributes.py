"""Attribute values: how they print, and how parsed values bind to typed fields.

An op's attributes are a frozen dataclass; each field's type annotation says what the
text may hold. Supported annotations: int, float, bool, str, Literal[...] of strings,
tuple[int, ...] / tuple[float, ...] (and fixed-length tuples), WeightRef, and any of
these `| None`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin


@dataclass(frozen=True)
class WeightRef:
    """A reference to an array in the graph's weight store: `@w["enc1.weight"]`."""

    name: str

    def __str__(self) -> str:
        return f"@w[{json.dumps(self.name)}]"


def format_value(value: Any) -> str:
    """The canonical text of an attribute value (deterministic, parseable)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, WeightRef):
        return str(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    raise TypeError(f"cannot print attribute value {value!r} of type {type(value).__name__}")


def format_attrs(pairs: list[tuple[str, Any]]) -> str:
    """` {a = 1, b = "x"}`, or '' for no attributes."""
    if not pairs:
        return ""
    return " {" + ", ".join(f"{k} = {format_value(v)}" for k, v in pairs) + "}"


OMIT_DEFAULT: dict[str, bool] = {"omit_default": True}
"""Field metadata: print the field only when it differs from its default (a field added
later this way leaves older dumps byte-identical; the parser fills in the default)."""


def attr_pairs(attrs: Any) -> list[tuple[str, Any]]:
    """(name, value) of a typed attribute dataclass, in field order."""
    return [(f.name, getattr(attrs, f.name)) for f in dataclasses.fields(attrs)
            if not (f.metadata.get("omit_default") and getattr(attrs, f.name) == f.default)]


def _describe(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(annotation))
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in get_args(annotation))
    if origin is tuple:
        return "a list"
    if annotation is type(None):
        return "none"
    if annotation is WeightRef:
        return 'a weight reference @w["name"]'
    return getattr(annotation, "__name__", str(annotation))


def coerce(value: Any, annotation: Any) -> Any:
    """Convert a parsed value to `annotation`; raises ValueError saying what was expected."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        for option in get_args(annotation):
            try:
                return coerce(value, option)
            except ValueError:
                continue
    elif annotation is type(None):
        if value is None:
            return None
    elif origin is Literal:
        if isinstance(value, str) and value in get_args(annotation):
            return value
    elif origin is tuple:
        args = get_args(annotation)
        if isinstance(value, (list, tuple)):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(coerce(v, args[0]) for v in value)
            if len(value) == len(args):
                return tuple(coerce(v, a) for v, a in zip(value, args, strict=True))
    elif annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif annotation is WeightRef and isinstance(value, WeightRef):
        return value
    raise ValueError(f"expected {_describe(annotation)}, got {format_value(value)}")


@cache
def field_types(attrs_cls: type) -> dict[str, Any]:
    """Resolved type annotations of an attribute dataclass."""
    return typing.get_type_hints(attrs_cls)


def bind_attrs(attrs_cls: type, values: dict[str, Any]) -> Any:
    """Build a typed attribute dataclass from parsed values; ValueError names the field."""
    hints = field_types(attrs_cls)
    fields = {f.name: f for f in dataclasses.fields(attrs_cls)}
    unknown = [k for k in values if k not in fields]
    if unknown:
        raise ValueError(
            f"unknown attribute '{unknown[0]}' (expected: {', '.join(fields) or 'none'})"
        )
    kwargs = {}
    for name, f in fields.items():
        if name in values:
            try:
                kwargs[name] = coerce(values[name], hints[name])
            except ValueError as err:
                raise ValueError(f"attribute '{name}': {err}") from None
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"missing attribute '{name}'")
    return attrs_cls(**kwargs)
