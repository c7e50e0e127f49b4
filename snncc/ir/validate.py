"""Checks made when an IR file is loaded, beyond the grammar and each op's own verifier:
graph attributes in range, weight arrays of finite floats, and properties that are known
and actually hold (a hand-edited `properties` must not claim a conversion not done)."""

from __future__ import annotations

import math

import numpy as np

from snncc.ir.graph import Graph, GraphAttrs
from snncc.ir.properties import PROPERTIES
from snncc.ir.weights import WeightStore


def attrs_problem(attrs: GraphAttrs) -> str | None:
    if not (math.isfinite(attrs.dt) and attrs.dt > 0):
        return f"dt must be a positive number of seconds, got {attrs.dt}"
    if attrs.timesteps < 1:
        return f"timesteps must be ≥ 1, got {attrs.timesteps}"
    return None


def weights_problem(weights: WeightStore) -> str | None:
    for name in weights:
        array = weights[name]
        if array.dtype == np.int32:
            continue  # connectivity (syn.sparse's indices); the ops check their use
        if not np.issubdtype(array.dtype, np.floating):
            return (f"weight array '{name}' holds {array.dtype} values; snncc weights are "
                    "floating point (int32 only for connectivity indices)")
        bad = int(array.size - np.isfinite(array).sum())
        if bad:
            return f"weight array '{name}' holds {bad} NaN or infinite value(s)"
    return None


def properties_problem(graph: Graph) -> str | None:
    """An unknown property, or one whose check says the graph lacks it. Properties of plugin
    passes are known once the plugin's module is imported (the CLI imports them all)."""
    for name in graph.attrs.properties:
        prop = PROPERTIES.get(name)
        if prop is None:
            return (f"unknown property '{name}' (known: {', '.join(sorted(PROPERTIES))}); "
                    "properties are set by the passes that establish them")
        why = prop.check(graph)
        if why:
            return (f"property '{name}' is claimed but does not hold: {why}; remove it, or "
                    "run the pass that establishes it")
    return None
