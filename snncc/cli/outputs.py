"""Where commands write: output paths checked before any work, files staged as temporaries
and renamed into place together, compile directories swapped in atomically.

Promises (docs/cli.md, "Outputs"): an output is never an input of the command; a failing
command leaves no new file behind; an existing compile directory is replaced only by
`--force`, only when snncc wrote it, and at every instant holds either the complete old or
the complete new output.
"""

from __future__ import annotations

import ctypes
import errno
import io
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from snncc.diagnostics import SnnccError, UsageError
from snncc.evaluate.compiled import REPORT
from snncc.host.files import replace, temp_beside


def _same(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_output_file(path: Path, option: str, suffixes: Sequence[str] = (),
                      inputs: Sequence[Path] = ()) -> Path:
    """Refuse, before any work, an output file that cannot or must not be written."""
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(f"{option} {path}: expected a file ending in {', '.join(suffixes)}")
    for source in inputs:
        if _same(path, source):
            raise SnnccError(f"{option} {path}: that is an input of this command ({source}); "
                             "writing it would destroy the input: choose another name")
    if path.is_dir():
        raise SnnccError(f"{option} {path}: is a directory; give a file name")
    check_writable_dir(path.parent, option, path)
    return path


def check_writable_dir(directory: Path, option: str, path: Path) -> None:
    """`directory` exists, is a directory and can be written into."""
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise SnnccError(f"{option} {path}: {directory} {what}; create it first or choose "
                         "another place")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise SnnccError(f"{option} {path}: cannot write into {directory} (read-only or "
                         "permission denied)")


def image_suffixes() -> tuple[str, ...]:
    """File suffixes Pillow can write."""
    from PIL import Image

    Image.init()
    return tuple(sorted(ext for ext, fmt in Image.registered_extensions().items()
                        if fmt in Image.SAVE))


@dataclass
class StagedOutputs:
    """Files written as hidden temporaries beside their targets, renamed into place by
    `commit` — so a command that fails half-way leaves nothing new."""

    staged: list[tuple[Path, Path]] = field(default_factory=list)

    def write(self, path: Path, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.staged.append((temp_beside(path, raw), path))

    def commit(self) -> None:
        for tmp, path in self.staged:
            replace(tmp, path)
        self.staged = []

    def discard(self) -> None:
        for tmp, _ in self.staged:
            tmp.unlink(missing_ok=True)
        self.staged = []


@contextmanager
def staged_outputs() -> Iterator[StagedOutputs]:
    """Stage files in the block; rename them all into place when it succeeds."""
    out = StagedOutputs()
    try:
        yield out
        out.commit()
    finally:
        out.discard()


def encode_npy(array: object) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array))
    return buffer.getvalue()


def encode_image(array: object, suffix: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=Image.registered_extensions()[suffix.lower()])
    return buffer.getvalue()


# compile directories ------------------------------------------------------------------

def is_compiled_dir(path: Path) -> bool:
    """A directory `snncc compile` finished: its report.json names the snncc version."""
    import json

    try:
        report = json.loads((path / REPORT).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and "snncc_version" in report


def check_output_dir(outdir: Path, force: bool, inputs: Sequence[Path]) -> None:
    """Refuse an output directory `compile` must not create or replace."""
    resolved = outdir.resolve()
    protected = {Path.cwd().resolve(): "the current directory",
                 Path(resolved.anchor): "the file system root",
                 Path.home().resolve(): "your home directory"}
    for place, what in protected.items():
        if resolved == place or resolved in place.parents:
            raise SnnccError(f"-o {outdir}: is {what} or one of its parents; snncc writes a "
                             "compile into a directory of its own: choose a new name")
    for source in inputs:
        if resolved in source.resolve().parents:
            raise SnnccError(f"-o {outdir}: holds the input {source}; choose another "
                             "directory")
    if outdir.is_symlink() or (outdir.exists() and not outdir.is_dir()):
        raise SnnccError(f"-o {outdir}: exists and is not a directory; choose another name")
    if outdir.exists():
        if not force:
            raise SnnccError(f"{outdir}: output directory already exists; pass --force to "
                             "replace it or -o to choose another")
        if any(outdir.iterdir()) and not is_compiled_dir(outdir):
            raise SnnccError(f"{outdir}: --force replaces only a directory `snncc compile` "
                             f"wrote (with its {REPORT}), and this one is not; choose another "
                             "name or remove it yourself")
    parent = next(p for p in resolved.parents if p.exists())
    check_writable_dir(parent, "-o", outdir)


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _install(tmp: Path, outdir: Path, force: bool) -> None:
    """Move the finished `tmp` to `outdir`, swapping out an old output under `--force`."""
    try:
        os.rename(tmp, outdir)  # succeeds when outdir is missing (or an empty directory)
        return
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not force:
            raise
    if not is_compiled_dir(outdir):
        raise SnnccError(f"{outdir}: appeared during the compile and is not a snncc compile; "
                         "left alone")
    if _exchange(tmp, outdir):
        return  # tmp now holds the old output, which the caller removes
    old = tmp.with_name(tmp.name + ".old")
    os.rename(outdir, old)
    os.rename(tmp, outdir)
    os.rename(old, tmp)


def _remove_stale(outdir: Path) -> None:
    """Remove temporary directories of earlier compiles into `outdir` that were killed
    (SIGKILL leaves them): those whose process no longer exists."""
    pattern = re.compile(rf"\.{re.escape(outdir.name)}\.(\d+)-[0-9a-f]{{8}}")
    if not outdir.parent.is_dir():
        return
    for path in outdir.parent.iterdir():
        m = pattern.fullmatch(path.name)
        if m and path.is_dir() and not _alive(int(m.group(1))):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


@contextmanager
def atomic_directory(outdir: Path, force: bool, inputs: Sequence[Path] = ()) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces `outdir` only if the block succeeds.

    On any failure the temporary directory (and any parent this created) is removed.
    """
    check_output_dir(outdir, force, inputs)
    _remove_stale(outdir)
    created = [p for p in reversed(outdir.parents) if not p.exists()]
    # named before it exists, so that a signal at any moment finds it in the `finally`
    tmp = outdir.parent / f".{outdir.name}.{os.getpid()}-{secrets.token_hex(4)}"
    try:
        try:
            outdir.parent.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
        except OSError as err:
            raise SnnccError(f"-o {outdir}: cannot create it: {err.strerror}") from None
        yield tmp
        _install(tmp, outdir, force)
        created = []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for parent in reversed(created):
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
