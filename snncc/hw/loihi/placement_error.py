"""The one error a caller of the partitioner can cause."""

from __future__ import annotations

from snncc.diagnostics import SnnccError


class PlacementError(SnnccError):
    """A block graph or chip budget that cannot be placed; the message says what to change."""
