"""Pipeline strings: `fold-batchnorm,scale-rates{percentile=99.9 target-rate=200}`.

A pipeline is a comma-separated list of pass names, each optionally followed by `{...}`
holding space-separated `key=value` options. Keys may use dashes or underscores; values are
bound to the pass dataclass's typed fields. Errors show the string with a caret.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from snncc.diagnostics import SnnccError, UsageError, located
from snncc.ir.attributes import coerce, field_types

_TOKEN = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_\-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s{}"]+)\s*')
_NAME = re.compile(r"\s*([A-Za-z0-9_][A-Za-z0-9_\-.]*)\s*")


class PipelineError(UsageError):
    """A pipeline string that cannot be parsed or bound to pass options."""


class OptionValueError(PipelineError):
    """A well-formed option whose value the pass or target refuses (a SnnccError from its
    constructor, e.g. a percentile outside (0, 100]): like every value out of its range,
    command-line flags included, exit code 1."""

    exit_code = 1


@dataclass(frozen=True)
class PassSpec:
    """One element of a pipeline string, not yet bound to a pass class."""

    name: str
    options: dict[str, tuple[str, int]]  # key → (raw text, column)
    column: int


def _fail(text: str, col: int, message: str, what: str) -> PipelineError:
    return PipelineError(located(what, 1, col, f"error: {message}", text))


def parse_specs(text: str, what: str = "pipeline") -> list[PassSpec]:
    """Split a pipeline / target string into names and raw options (1-based columns)."""
    specs: list[PassSpec] = []
    pos = 0
    if not text.strip():
        return specs
    while True:
        m = _NAME.match(text, pos)
        if not m:
            raise _fail(text, pos + 1, "expected a name", what)
        name, name_col, pos = m.group(1), m.start(1) + 1, m.end()
        options: dict[str, tuple[str, int]] = {}
        if pos < len(text) and text[pos] == "{":
            pos += 1
            while True:
                while pos < len(text) and text[pos] == " ":
                    pos += 1
                if pos < len(text) and text[pos] == "}":
                    pos += 1
                    break
                om = _TOKEN.match(text, pos)
                if not om:
                    raise _fail(text, pos + 1, "expected key=value or '}'", what)
                key = om.group(1).replace("-", "_")
                if key in options:
                    raise _fail(text, om.start(1) + 1, f"option '{om.group(1)}' given twice", what)
                options[key] = (om.group(2), om.start(2) + 1)
                pos = om.end()
        specs.append(PassSpec(name, options, name_col))
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if pos == len(text):
            return specs
        if text[pos] != ",":
            raise _fail(text, pos + 1, "expected ',' between names", what)
        pos += 1


def _convert(raw: str, annotation: Any) -> Any:
    """Text → value of `annotation`, via the IR's attribute coercion rules."""
    if raw.startswith('"'):
        return coerce(raw[1:-1].replace('\\"', '"'), annotation)
    origin = get_origin(annotation)
    options = get_args(annotation) if origin is Union or str(origin) == "types.UnionType" else ()
    candidates: list[Any] = []
    if raw in ("true", "false"):
        candidates.append(raw == "true")
    if raw == "none":
        candidates.append(None)
    for parse in (int, float):
        with contextlib.suppress(ValueError):
            candidates.append(parse(raw))
    if origin is tuple or any(get_origin(o) is tuple for o in options):
        parts = [p for p in raw.split(",") if p]
        candidates.append([_number(p) for p in parts])
    candidates.append(raw)
    last: Exception | None = None
    for value in candidates:
        try:
            return coerce(value, annotation)
        except ValueError as err:
            last = err
    assert last is not None
    raise last


def _number(text: str) -> Any:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def bind(cls: type, spec: PassSpec, text: str, what: str = "pipeline") -> Any:
    """Instantiate `cls` (a frozen dataclass) from a spec's raw options."""
    hints = field_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, (raw, col) in spec.options.items():
        if key not in fields:
            names = ", ".join(k.replace("_", "-") for k in fields) or "none"
            raise _fail(text, col - len(key) - 1,
                        f"{spec.name} has no option '{key.replace('_', '-')}' (options: {names})",
                        what)
        try:
            kwargs[key] = _convert(raw, hints[key])
        except ValueError as err:
            raise _fail(text, col, f"{spec.name}: option '{key.replace('_', '-')}': {err}",
                        what) from None
    try:
        return cls(**kwargs)
    except SnnccError as err:
        message = str(err) if str(err).startswith(f"{spec.name}:") else f"{spec.name}: {err}"
        raise OptionValueError(located(what, 1, spec.column, f"error: {message}", text)
                               ) from None
    except (ValueError, TypeError) as err:
        raise _fail(text, spec.column, f"{spec.name}: {err}", what) from None


def format_spec(obj: Any) -> str:
    """The pipeline-string form of a bound pass or target: non-default options only."""
    parts = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if value != default:
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, tuple):
                text = ",".join(str(v) for v in value)
            else:
                text = str(value)
            if not text or re.search(r'[\s{},"]', text):
                text = '"' + text.replace('"', '\\"') + '"'
            parts.append(f"{f.name.replace('_', '-')}={text}")
    name = type(obj).name
    return f"{name}{{{' '.join(parts)}}}" if parts else name


def describe_type(annotation: Any) -> str:
    """Short type wording for `snncc passes` listings."""
    if get_origin(annotation) is Literal:
        return "|".join(str(a) for a in get_args(annotation))
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")
