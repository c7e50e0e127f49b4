"""The weight store: named arrays kept beside the IR text in a sidecar `.npz`.

The IR text records the store's sha256 so that a dump and its weights cannot drift apart.
The hash covers names, dtypes, shapes and bytes in sorted name order, so it does not depend
on zip timestamps.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.attributes import WeightRef

_SAFE = re.compile(r"[^A-Za-z0-9_.:/\-]")


class WeightStore:
    """Name → array. Arrays are read-only once stored: passes add new ones."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None) -> None:
        self.source: Path | None = None  # the .npz this store was loaded from
        self._arrays: dict[str, np.ndarray] = {}
        for name, array in (arrays or {}).items():
            self._put(name, array)

    def _put(self, name: str, array: np.ndarray) -> None:
        array = np.array(array, copy=True)
        array.setflags(write=False)
        self._arrays[name] = array

    def add(self, hint: str, array: np.ndarray) -> WeightRef:
        """Store `array` under a fresh name derived from `hint`; return its reference."""
        base = _SAFE.sub("_", hint) or "w"
        name, i = base, 1
        while name in self._arrays:
            name, i = f"{base}.{i}", i + 1
        self._put(name, array)
        return WeightRef(name)

    def __getitem__(self, ref: WeightRef | str) -> np.ndarray:
        name = ref.name if isinstance(ref, WeightRef) else ref
        return self._arrays[name]

    def __contains__(self, ref: object) -> bool:
        name = ref.name if isinstance(ref, WeightRef) else ref
        return name in self._arrays

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._arrays))

    def __len__(self) -> int:
        return len(self._arrays)

    def retain(self, names: set[str]) -> None:
        """Drop every array not named in `names` (after passes replaced weights)."""
        self._arrays = {k: v for k, v in self._arrays.items() if k in names}

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for name in sorted(self._arrays):
            array = np.ascontiguousarray(self._arrays[name])
            digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    def save(self, path: Path) -> None:
        """Write the store as `.npz`, atomically."""
        from snncc.host.files import write_atomic

        write_atomic(path, self.encode())

    def encode(self) -> bytes:
        """The store as the bytes of an `.npz` file."""
        buffer = io.BytesIO()
        np.savez(buffer, **{name: self._arrays[name] for name in sorted(self._arrays)})
        return buffer.getvalue()

    @staticmethod
    def load(
        path: Path, expected_sha256: str | None = None, referenced_by: str = ""
    ) -> WeightStore:
        """Read an `.npz`; errors name the file, the IR that referenced it, and what to do."""
        by = f" (referenced by {referenced_by})" if referenced_by else ""
        if not path.is_file():
            raise SnnccError(
                f"{path}: weights file not found{by}; keep the .npz beside the IR dump "
                "or re-run the command that wrote it"
            )
        try:
            with np.load(path, allow_pickle=False) as data:
                store = WeightStore({name: data[name] for name in data.files})
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise SnnccError(f"{path}: not a readable .npz weights file{by}: {err}") from None
        store.source = path
        if expected_sha256 is not None and store.sha256() != expected_sha256:
            raise SnnccError(
                f"{path}: sha256 {store.sha256()[:12]}… does not match {expected_sha256[:12]}… "
                f"recorded{by}; the weights belong to another dump — use the .npz written "
                "together with this IR"
            )
        return store
