"""Energy model: counts from the graph, components, overrides and their errors."""

from __future__ import annotations

import json

import pytest
from irbuild import tiny_spiking, tiny_unet

from snncc.diagnostics import SnnccError
from snncc.energy import EnergyConstants, ann_energy, count_macs, fan_out, loihi_energy


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
