"""Energy per image: the spiking network on Loihi versus the ANN on a CPU or GPU.

Loihi's energy is counted from activity (Davies et al., IEEE Micro 38(1), 2018, Table 2):
every synaptic operation, every neuron update (active or idle), every spike message within
a chip and across chips, plus static power over the run. The ANN's energy is counted from
its multiply-accumulates (Horowitz, ISSCC 2014: 32-bit float multiply 3.7 pJ + add 0.9 pJ at
45 nm) and, separately, from onnxruntime's measured time here times a stated power. Every
constant is documented in docs/energy.md and can be overridden from a JSON file.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.ops import Readout, SpikeInput
from snncc.ir.ops.kinds import Population
from snncc.ir.summary import population_size, synapse_count

PJ = 1e-12


@dataclass(frozen=True)
class EnergyConstants:
    """Per-event energies (pJ), powers (W) and times (s); see docs/energy.md for sources."""

    synop_pj: float = 23.6                 # Davies 2018, Table 2: synaptic spike op
    neuron_update_active_pj: float = 81.0  # Davies 2018: neuron update, active
    neuron_update_idle_pj: float = 52.0    # Davies 2018: neuron update, inactive
    spike_in_tile_pj: float = 1.7          # Davies 2018: spike within a tile
    tile_hop_pj: float = 3.5               # Davies 2018: 3.0 (E-W) / 4.0 (N-S) per hop, mean
    mean_hops_in_chip: float = 3.9         # mean Manhattan distance on Loihi's 8x4 tile mesh
    interchip_hops: float = 16.0           # assumption: hops a spike pays to leave a chip
    loihi_static_w_per_chip: float = 0.03  # Blouw 2019, Table 1: Loihi idle power 0.029 W
    loihi_step_s: float = 50e-6            # assumption: wall time of one Loihi timestep
    mac_pj: float = 4.6                    # Horowitz 2014: fp32 mult 3.7 pJ + add 0.9 pJ
    cpu_power_w: float = 15.0              # assumption: 2 busy cores of a server CPU
    gpu_mac_pj: float = 1.0                # assumption: fp32 MAC incl. memory on a modern GPU

    @staticmethod
    def load(path: Path | None) -> EnergyConstants:
        """Defaults, overridden by the keys of a JSON object in `path`."""
        if path is None:
            return EnergyConstants()
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SnnccError(f"{path}: cannot read energy constants: {err}") from None
        known = {f.name for f in dataclasses.fields(EnergyConstants)}
        if not isinstance(data, dict) or not set(data) <= known:
            extra = sorted(set(data) - known) if isinstance(data, dict) else "not an object"
            raise SnnccError(f"{path}: unknown energy constants {extra}; known: "
                             f"{', '.join(sorted(known))}")
        bad = [k for k, v in data.items() if isinstance(v, bool)
               or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0]
        if bad:
            raise SnnccError(f"{path}: energy constants must be finite non-negative numbers: "
                             f"{bad}")
        return EnergyConstants(**{k: float(v) for k, v in data.items()})


@dataclass(frozen=True)
class StatedPower:
    """A power figure for time × power where no energy counter can be read, and its source."""

    watts: float
    source: str


# Intel Xeon Platinum 8480+ (4th-generation Xeon Scalable, the AMX-capable family whose
# flags this machine's "Intel(R) Xeon(R) Processor" reports): TDP 350 W over 56 cores
# (Intel ARK, product 231746). A busy core's share of a fully loaded package.
XEON_TDP_W_PER_CORE = StatedPower(
    350.0 / 56, "Intel ARK, Xeon Platinum 8480+: TDP 350 W / 56 cores = 6.25 W per busy core")


def fan_out(graph: Graph) -> dict[str, float]:
    """Synapses leaving each population, per neuron, the host-side input's included (its
    spikes drive on-chip synapses); readouts drive nothing."""
    out: dict[str, float] = {}
    for op in graph.ops:
        if isinstance(op, (Population, SpikeInput)) and not isinstance(op, Readout):
            users = graph.users(op.result)
            total = sum(synapse_count(u, graph.weights) for u in users)
            out[op.result.name] = total / math.prod(op.result.type.shape[1:])
    return out


def loihi_energy(
    graph: Graph,
    spikes: dict[str, float],
    timesteps: int,
    chips: int = 1,
    interchip_fraction: float = 0.0,
    constants: EnergyConstants | None = None,
    messages: float | None = None,
) -> dict[str, float]:
    """Joules per image on Loihi, by component.

    `spikes` maps each population's name to its spike count for one image over `timesteps`
    (the host-side input's spikes cost synaptic ops and messages, not neuron updates);
    `messages` is the number of spike messages (default: one per spike) and
    `interchip_fraction` the share of them that crosses chips (see
    snncc.evaluate.traffic).
    """
    c = constants or EnergyConstants()
    unknown = sorted(set(spikes) - {op.result.name for op in graph.ops})
    if unknown:
        raise SnnccError(f"spike counts name populations the graph does not have: {unknown}")
    fanouts = fan_out(graph)
    neurons = sum(population_size(op) for op in graph.ops if isinstance(op, Population))
    host = {op.result.name for op in graph.ops if isinstance(op, SpikeInput)}
    total_spikes = sum(n for name, n in spikes.items() if name not in host)
    messages = sum(spikes.values()) if messages is None else messages
    synops = sum(n * fanouts.get(name, 0.0) for name, n in spikes.items())
    updates = neurons * timesteps
    message_pj = c.spike_in_tile_pj + c.mean_hops_in_chip * c.tile_hop_pj
    parts = {
        "synaptic_ops": synops * c.synop_pj * PJ,
        "neuron_updates": (total_spikes * c.neuron_update_active_pj
                           + max(updates - total_spikes, 0) * c.neuron_update_idle_pj) * PJ,
        "spikes_within_chip": messages * (1 - interchip_fraction) * message_pj * PJ,
        "spikes_between_chips": messages * interchip_fraction
        * (message_pj + c.interchip_hops * c.tile_hop_pj) * PJ,
        "static": c.loihi_static_w_per_chip * chips * timesteps * c.loihi_step_s,
    }
    parts["total"] = sum(parts.values())
    return parts


def count_macs(graph: Graph) -> int:
    """Multiply-accumulates of one inference of an analog graph (convs, dense, pools)."""
    return sum(synapse_count(op, graph.weights) for op in graph.ops)


def ann_energy(macs: int, cpu_seconds: float, constants: EnergyConstants | None = None
               ) -> dict[str, Any]:
    """Joules per image for the ANN: counted from MACs, and measured time × power."""
    c = constants or EnergyConstants()
    return {
        "macs": macs,
        "cpu_counted": macs * c.mac_pj * PJ,
        "cpu_measured": cpu_seconds * c.cpu_power_w,
        "cpu_seconds": cpu_seconds,
        "gpu_counted": macs * c.gpu_mac_pj * PJ,
    }
