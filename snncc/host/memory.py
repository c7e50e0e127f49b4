"""Size checks made before allocating: what this machine can hold and compute."""

from __future__ import annotations

import math
import os

from snncc.diagnostics import SnnccError

TENSOR_SHARE = 4  # one tensor of one image may take at most 1/4 of the physical memory


def physical_memory() -> int:
    """Bytes of RAM on this machine (16 GiB where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


def gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_tensor_size(what: str, shape: tuple[int, ...], itemsize: int = 4) -> None:
    """Refuse a tensor (one image's worth) too large for this machine to process."""
    size = math.prod(shape) * itemsize
    limit = physical_memory() // TENSOR_SHARE
    if size > limit:
        raise SnnccError(f"{what} of shape {'x'.join(map(str, shape))} takes {gib(size)} per "
                         f"image, more than this machine can process ({gib(limit)}, a quarter "
                         "of its memory); use a smaller input shape (--input-shape)")
