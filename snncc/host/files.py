"""Atomic file writes: the data goes to a hidden temporary beside the target, which is
renamed into place, so a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from snncc.diagnostics import SnnccError


def umask_mode(mode: int) -> int:
    """`mode` as the process's umask lets a new file or directory have it."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def temp_beside(path: Path, data: bytes) -> Path:
    """`data` in a new hidden file next to `path` (ordinary permissions); removed again
    when writing fails."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise SnnccError(f"{path}: cannot write: {err.strerror}") from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, umask_mode(0o666))
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise SnnccError(f"{path}: cannot write: {err.strerror}") from None
    return tmp


def replace(tmp: Path, path: Path) -> None:
    """Rename `tmp` onto `path`; on failure `tmp` is removed."""
    try:
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise SnnccError(f"{path}: cannot write: {err.strerror}") from None


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `path` in one step."""
    replace(temp_beside(path, data.encode() if isinstance(data, str) else data), path)
