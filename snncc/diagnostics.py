"""User-facing errors: what went wrong, where, and what to do.

Every error a user can cause is a :class:`SnnccError`; the CLI prints its message and
exits with code 1 (code 2 for :class:`UsageError`). Anything else is an internal error.
"""

from __future__ import annotations


class SnnccError(Exception):
    """An error caused by the user's input; the message says where and what to do."""

    exit_code = 1


class UsageError(SnnccError):
    """A command line that does not make sense (bad flag combination, unknown name)."""

    exit_code = 2


def source_excerpt(text: str, line: int, col: int) -> str:
    """The 1-based `line` of `text` and a caret under 1-based column `col`."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    src = lines[line - 1]
    return f"  {src}\n  {' ' * (max(col, 1) - 1)}^"


def located(file: str, line: int, col: int, message: str, text: str | None = None) -> str:
    """Format `file:line:col: message` followed by the source line and a caret."""
    head = f"{file}:{line}:{col}: {message}"
    excerpt = source_excerpt(text, line, col) if text is not None else ""
    return f"{head}\n{excerpt}" if excerpt else head


def closest(name: str, known: list[str] | set[str]) -> str:
    """A ' (did you mean ...?)' suffix naming the closest known name, or ''."""
    import difflib

    match = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""
