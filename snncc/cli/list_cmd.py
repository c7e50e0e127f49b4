"""`snncc passes` and `snncc targets`: what is registered, with options and summaries."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from snncc.ir.attributes import field_types
from snncc.pipeline.options import describe_type
from snncc.pipeline.registry import PASSES, TARGETS, Registry, RegistryError


def register(sub: argparse._SubParsersAction) -> None:
    for name, registry in (("passes", PASSES), ("targets", TARGETS)):
        p = sub.add_parser(name, help=f"list the registered {name} and their options")
        p.add_argument("--json", action="store_true")
        p.set_defaults(run=lambda args, r=registry: run(args, r))


def describe(registry: Registry[Any]) -> list[dict[str, Any]]:
    """Every registered entry; one that cannot be loaded is listed with `broken` set."""
    out: list[dict[str, Any]] = []
    for name in registry.names():
        try:
            cls = registry.get(name)
        except RegistryError as err:
            out.append({"name": name, "broken": str(err), "source": registry.source(name)})
            continue
        hints = field_types(cls)
        options = [{"name": f.name.replace("_", "-"), "type": describe_type(hints[f.name]),
                    "default": f.default if f.default is not dataclasses.MISSING else None}
                   for f in dataclasses.fields(cls)]
        entry: dict[str, Any] = {"name": name, "summary": cls.summary, "options": options,
                                 "source": registry.source(name)}
        for key in ("requires", "establishes"):
            if hasattr(cls, key):
                entry[key] = sorted(str(prop) for prop in getattr(cls, key))
        if hasattr(cls, "modes"):
            entry["modes"] = list(cls.modes)
            entry["default_pipeline"] = cls.default_pipeline
        out.append(entry)
    return out


def run(args: argparse.Namespace, registry: Registry[Any]) -> int:
    entries = describe(registry)
    if args.json:
        print(json.dumps(entries, indent=2, default=str))
        return 0
    for e in entries:
        if "broken" in e:
            print(f"{e['name']}: BROKEN: {e['broken']}")
            continue
        print(f"{e['name']}: {e['summary']}")
        for o in e["options"]:
            print(f"    {o['name']}: {o['type']} = {o['default']!r}")
        for key in ("requires", "establishes", "modes"):
            if e.get(key):
                print(f"    {key}: {', '.join(e[key])}")
        if e.get("default_pipeline"):
            print(f"    default pipeline: {e['default_pipeline']}")
        print(f"    from {e['source']}")
    return 0
