"""Registries of passes and targets, fed by entry points.

Built-in passes and targets are declared in snncc's own pyproject under the entry-point
groups `snncc.passes` and `snncc.targets`, exactly as a third-party plugin declares its
own, so one mechanism finds both. A name declared twice is an error naming both sources;
an unknown name gets a did-you-mean. Only the entry point asked for is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

from snncc.diagnostics import SnnccError, UsageError, closest

T = TypeVar("T")


class RegistryError(SnnccError):
    """A broken plugin set-up: duplicate names, or an entry point that does not load."""


@dataclass(frozen=True)
class _Entry:
    source: str
    target: str
    loaded: Any = None


class Registry(Generic[T]):
    """Name → class for one entry-point group."""

    def __init__(self, group: str, kind: str, plural: str) -> None:
        self.group = group
        self.kind = kind
        self.plural = plural
        self._entries: dict[str, _Entry] | None = None
        self._extra: dict[str, _Entry] = {}

    def _scan(self) -> dict[str, _Entry]:
        if self._entries is None:
            found: dict[str, _Entry] = {}
            for ep in metadata.entry_points(group=self.group):
                dist = ep.dist.name if ep.dist is not None else "?"
                entry = _Entry(f"{dist} ({ep.value})", ep.value)
                if ep.name in found and found[ep.name].target != ep.value:
                    raise RegistryError(
                        f"{self.kind} '{ep.name}' is registered twice: by {found[ep.name].source} "
                        f"and by {entry.source}; uninstall or rename one of them"
                    )
                found[ep.name] = entry
            self._entries = found
        return {**self._entries, **self._extra}

    def add(self, cls: type[T], source: str = "registered in-process") -> type[T]:
        """Register a class at run time (scripts, notebooks, tests); same duplicate rules."""
        name = cls.name  # type: ignore[attr-defined]
        existing = self._scan().get(name)
        if existing is not None and existing.loaded is not cls:
            raise RegistryError(
                f"{self.kind} '{name}' is registered twice: by {existing.source} and by {source}"
            )
        self._extra[name] = _Entry(source, f"{cls.__module__}:{cls.__qualname__}", cls)
        return cls

    def remove(self, name: str) -> None:
        """Forget an in-process registration."""
        self._extra.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._scan())

    def source(self, name: str) -> str:
        return self._scan()[name].source

    def get(self, name: str) -> type[T]:
        entries = self._scan()
        if name not in entries:
            raise UsageError(
                f"unknown {self.kind} '{name}'{closest(name, entries.keys())}; "
                f"`snncc {self.plural}` lists them"
            )
        entry = entries[name]
        if entry.loaded is None:
            module, _, attr = entry.target.partition(":")
            try:
                obj: Any = __import__(module, fromlist=[attr or "_"])
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (Exception, SystemExit) as err:  # any failure of the plugin's own module
                raise RegistryError(
                    f"{self.kind} '{name}' from {entry.source} cannot be loaded: "
                    f"{type(err).__name__}: {err}; fix or uninstall that package"
                ) from None
            if getattr(obj, "name", None) != name:
                raise RegistryError(
                    f"{self.kind} '{name}' from {entry.source} loads a class named "
                    f"'{getattr(obj, 'name', None)}'; the entry-point name must match"
                )
            entry = _Entry(entry.source, entry.target, obj)
            if name in self._extra:
                self._extra[name] = entry
            else:
                assert self._entries is not None
                self._entries[name] = entry
        return entry.loaded

    def all(self) -> list[type[T]]:
        return [self.get(n) for n in self.names()]

    def loadable(self) -> list[type[T]]:
        """Every class that loads; a broken plugin is left out here and reported where it
        is used (`get`) or listed (`snncc passes`)."""
        out = []
        for name in self.names():
            try:
                out.append(self.get(name))
            except RegistryError:
                continue
        return out


PASSES: Registry[Any] = Registry("snncc.passes", "pass", "passes")
TARGETS: Registry[Any] = Registry("snncc.targets", "target", "targets")
