"""Option checking shared by the conversion passes.

An `OptionError` is both a `SnnccError` (a user error, when a pass is built in Python) and
a `ValueError` (so a pipeline string's binder shows it with a caret under the pass).
"""

from __future__ import annotations

from snncc.diagnostics import SnnccError


class OptionError(SnnccError, ValueError):
    """A pass option outside its valid range; the message says which and what is valid."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise OptionError(message)
