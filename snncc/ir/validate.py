"""Checks made when an IR file is loaded, beyond the grammar and each op's own verifier:
graph attributes in range, weight arrays of finite floats, and properties that are known
and actually hold (a hand-edited `properties` must not claim a conversion not done)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from snncc.ir.graph import Graph, GraphAttrs
from snncc.ir.ops import IF, LIF, Readout, Relu
from snncc.ir.weights import WeightStore

BUILTIN_PROPERTIES = frozenset({"canonical", "linear-fused", "spiking", "normalized",
                                "quantized", "tiled", "placed"})


def attrs_problem(attrs: GraphAttrs) -> str | None:
    if not (math.isfinite(attrs.dt) and attrs.dt > 0):
        return f"dt must be a positive number of seconds, got {attrs.dt}"
    if attrs.timesteps < 1:
        return f"timesteps must be ≥ 1, got {attrs.timesteps}"
    return None


def weights_problem(weights: WeightStore) -> str | None:
    for name in weights:
        array = weights[name]
        if not np.issubdtype(array.dtype, np.floating):
            return (f"weight array '{name}' holds {array.dtype} values; snncc weights are "
                    "floating point")
        bad = int(array.size - np.isfinite(array).sum())
        if bad:
            return f"weight array '{name}' holds {bad} NaN or infinite value(s)"
    return None


def _populations(graph: Graph) -> list[IF | LIF]:
    return [op for op in graph.ops if isinstance(op, (IF, LIF))]


_HOLDS: dict[str, tuple[Callable[[Graph], bool], str]] = {
    "spiking": (lambda g: not any(isinstance(op, Relu) for op in g.ops)
                and any(isinstance(op, (IF, LIF, Readout)) for op in g.ops),
                "it has act.relu ops or no populations"),
    "tiled": (lambda g: all(op.attrs.block_shape is not None for op in _populations(g)),
              "a population has no block_shape"),
    "placed": (lambda g: all(op.attrs.chips for op in _populations(g)),
               "a population has no chips"),
}


def properties_problem(graph: Graph) -> str | None:
    """An unknown property, or one whose structure the graph lacks."""
    for prop in graph.attrs.properties:
        if prop not in BUILTIN_PROPERTIES and prop not in _plugin_properties():
            return (f"unknown property '{prop}' (known: "
                    f"{', '.join(sorted(BUILTIN_PROPERTIES | _plugin_properties()))}); "
                    "properties are set by the passes that establish them")
        holds, why = _HOLDS.get(prop, (lambda g: True, ""))
        if not holds(graph):
            return (f"property '{prop}' is claimed but does not hold: {why}; remove it, or "
                    "run the pass that establishes it")
    return None


def _plugin_properties() -> frozenset[str]:
    from snncc.registry import PASSES

    return frozenset(p for cls in PASSES.all() for p in getattr(cls, "establishes", ()))
