"""Training helpers: for SNN-friendly ANNs (firing-rate regularization, stats export) and
for directly trained SNNs (the hybrid start and the export; the trainable network itself is
`snncc.sim.differentiable.SpikingNet`).

Importing this package does not import PyTorch (the compiler reads stats files without it).
The PyTorch-based names below load their submodule on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from snncc.data.stats import FORMAT, VERSION, LayerStats, RateStats, RateStatsError

_LAZY = {
    "LoihiRateReLU": "torch_rate",
    "PercentileRateRegularizer": "torch_rate",
    "RateTarget": "torch_rate",
    "percentile_rate_loss": "torch_rate",
    "to_loihi_rate": "torch_rate",
    "to_plain_relu": "torch_rate",
    "ExportResult": "export",
    "export_with_stats": "export",
    "converted_graph": "hybrid",
    "declaration": "hybrid",
    "export_spiking": "spiking_export",
}

__all__ = [
    "FORMAT",
    "VERSION",
    "LayerStats",
    "RateStats",
    "RateStatsError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
