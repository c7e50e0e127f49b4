"""Energy model: counts from the graph, components, overrides and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from irbuild import tiny_spiking, tiny_unet

from snncc.diagnostics import SnnccError
from snncc.hw.energy import EnergyConstants, ann_energy, count_macs, fan_out, loihi_energy


def test_fan_out_counts_synapses_per_source_neuron():
    g = tiny_spiking()
    # population s: 3x6x6 neurons driving a 1x1 conv to 1 channel → one synapse each
    assert fan_out(g) == {"s": pytest.approx(1.0)}


def test_loihi_energy_components_by_hand():
    g = tiny_spiking()
    c = EnergyConstants()
    parts = loihi_energy(g, {"s": 100.0}, timesteps=10, chips=1, interchip_fraction=0.25)
    neurons = 3 * 6 * 6 + 1 * 6 * 6  # IF population and readout
    assert parts["synaptic_ops"] == pytest.approx(100 * 1.0 * c.synop_pj * 1e-12)
    assert parts["neuron_updates"] == pytest.approx(
        (100 * c.neuron_update_active_pj + (neurons * 10 - 100) * c.neuron_update_idle_pj) * 1e-12)
    message = c.spike_in_tile_pj + c.mean_hops_in_chip * c.tile_hop_pj
    assert parts["spikes_within_chip"] == pytest.approx(75 * message * 1e-12)
    assert parts["spikes_between_chips"] == pytest.approx(
        25 * (message + c.interchip_hops * c.tile_hop_pj) * 1e-12)
    assert parts["static"] == pytest.approx(c.loihi_static_w_per_chip * 10 * c.loihi_step_s)
    assert parts["total"] == pytest.approx(sum(v for k, v in parts.items() if k != "total"))


def test_more_spikes_cost_more_and_unknown_layers_are_refused():
    g = tiny_spiking()
    low = loihi_energy(g, {"s": 10.0}, timesteps=10)["total"]
    high = loihi_energy(g, {"s": 1000.0}, timesteps=10)["total"]
    assert high > low
    with pytest.raises(SnnccError, match=r"populations the graph does not have: \['nope'\]"):
        loihi_energy(g, {"nope": 1.0}, timesteps=10)


def test_ann_energy_from_macs():
    g = tiny_unet()
    macs = count_macs(g)
    assert macs > 0
    e = ann_energy(macs, cpu_seconds=0.002)
    assert e["cpu_counted"] == pytest.approx(macs * 4.6e-12)
    assert e["cpu_measured"] == pytest.approx(0.002 * EnergyConstants().cpu_power_w)


def test_constants_override_file(tmp_path):
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"synop_pj": 27.1}))
    assert EnergyConstants.load(path).synop_pj == 27.1
    path.write_text(json.dumps({"synops_pj": 27.1}))
    with pytest.raises(SnnccError, match=r"unknown energy constants \['synops_pj'\]"):
        EnergyConstants.load(path)
    path.write_text(json.dumps({"synop_pj": -1}))
    with pytest.raises(SnnccError, match="non-negative numbers"):
        EnergyConstants.load(path)


def _placed_pair(chips_src=(0, 1), chips_dst=(0, 1)):
    """IF (2×4×4, two row blocks) → 3×3 conv → IF (same), blocks on the given chips."""
    from snncc.ir import Graph, TensorType
    from snncc.ir.ops import IF, Conv2d

    g = Graph("placed")
    x = g.add_input("x", TensorType((1, 2, 4, 4)))
    block = (2, 2, 4) if chips_src else None
    src = g.add(IF, [x], IF.Attrs(block_shape=block, chips=tuple(chips_src)), name="src")
    w = g.weights.add("w", np.ones((2, 2, 3, 3), np.float32))
    conv = g.add(Conv2d, [src], Conv2d.Attrs(w, pads=(1, 1, 1, 1)), name="conv")
    g.outputs = [g.add(IF, [conv], IF.Attrs(block_shape=block, chips=tuple(chips_dst)),
                       name="dst")]
    return g


def test_interchip_messages_by_hand():
    from snncc.evaluate.traffic import chip_traffic

    # src block 0 (rows 0-1, 16 neurons) reaches dst block 0 with all 16 and dst block 1
    # (rows 2-3) only through row 1 (8 neurons); symmetric for src block 1: links
    # [[16, 8], [8, 16]]; one spike per neuron → 48 messages, 16 between chips
    t = chip_traffic(_placed_pair(), {"src": 32.0, "dst": 5.0})
    assert (t.messages, t.interchip_messages, t.chips) == (48.0, 16.0, 2)
    assert t.interchip_fraction == pytest.approx(1 / 3)
    same_chip = chip_traffic(_placed_pair((0, 0), (0, 0)), {"src": 32.0})
    assert (same_chip.messages, same_chip.interchip_messages, same_chip.chips) == (48.0, 0.0, 1)


def test_no_placement_counts_one_message_per_spike_within_chips():
    from snncc.evaluate.traffic import chip_traffic

    t = chip_traffic(_placed_pair((), ()), {"src": 32.0})
    assert (t.messages, t.interchip_messages, t.placed) == (32.0, 0.0, False)


def test_energy_report_uses_placement_and_counts():
    from snncc.evaluate.energy_report import NO_PLACEMENT, energy_report

    c = EnergyConstants()
    placed = energy_report(_placed_pair(), {"src": 32.0}, 10, macs=1000, cpu_runs=[1e-3],
                           constants=c)
    assert placed["loihi_counts"]["placement"] == "partition-chips"
    assert placed["loihi_counts"]["chips"] == 2
    message = c.spike_in_tile_pj + c.mean_hops_in_chip * c.tile_hop_pj
    assert placed["loihi"]["spikes_between_chips"] == pytest.approx(
        16 * (message + c.interchip_hops * c.tile_hop_pj) * 1e-12)
    assert placed["loihi_counts"]["synaptic_ops"] == pytest.approx(
        32 * fan_out(_placed_pair())["src"])
    plain = energy_report(_placed_pair((), ()), {"src": 32.0}, 10, 1000, [1e-3], c)
    assert plain["loihi_counts"]["placement"] == NO_PLACEMENT
    assert plain["loihi"]["spikes_between_chips"] == 0.0
    assert plain["ratio"]["cpu_measured"] == pytest.approx(
        1e-3 * c.cpu_power_w / plain["loihi"]["total"])


def test_input_spikes_cost_synaptic_ops_not_neuron_updates():
    from snncc.ir import Graph, TensorType
    from snncc.ir.ops import Conv2d, Readout, SpikeInput

    g = Graph("inp")
    x = g.add_input("x", TensorType((1, 1, 4, 4)))
    s = g.add(SpikeInput, [x], name="s")
    w = g.weights.add("w", np.ones((1, 1, 1, 1), np.float32))
    conv = g.add(Conv2d, [s], Conv2d.Attrs(w), name="conv")
    g.outputs = [g.add(Readout, [conv], name="out")]
    c = EnergyConstants()
    assert fan_out(g)["s"] == pytest.approx(1.0)
    parts = loihi_energy(g, {"s": 10.0}, timesteps=2, constants=c)
    assert parts["synaptic_ops"] == pytest.approx(10 * c.synop_pj * 1e-12)
    assert parts["neuron_updates"] == pytest.approx(16 * 2 * c.neuron_update_idle_pj * 1e-12)
