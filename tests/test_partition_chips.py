"""partition-chips: the block graph from tiled IR, chips written back, the report, the
traffic it counts against nengo-loihi's own estimate, the compile output, bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from loihi_graphs import spiking_unet

from snncc.cli.main import main
from snncc.diagnostics import SnnccError
from snncc.hw.loihi.chip_blocks import block_graph, layer_rates
from snncc.hw.loihi.geometry import lower
from snncc.ir.ops import IF
from snncc.passes.partition_chips import PartitionChips
from snncc.passes.tile_cores import TileCores
from snncc.pipeline import PassContext, PassManager, parse_pipeline
from snncc.pipeline.options import PipelineError
from snncc.targets.loihi.builder import build, import_nengo

KEYS = {"interchip_spikes_per_step", "intrachip_spikes_per_step", "chips", "cores_per_chip"}


def tiled(size: int = 16, fraction: float = 0.05):
    g = spiking_unet(size)
    TileCores(max_fraction=fraction).run(g, PassContext())
    g.with_properties("tiled")
    return g


def set_rates(graph, rate: float) -> None:
    """As scale-rates leaves the IR: every population's mean rate is `rate`."""
    for op in graph.ops_of(IF):
        op.replace_attrs(mean_rate=rate)


def test_chips_are_written_per_block_within_capacity():
    g = tiled()
    ctx = PassContext()
    assert PartitionChips(cores_per_chip=4).run(g, ctx)
    report = ctx.report["partition-chips"]
    assert report.keys() >= KEYS
    pops = list(g.ops_of(IF))
    per_chip = np.bincount([c for op in pops for c in op.attrs.chips])
    assert len(per_chip) == report["chips"] == -(-report["blocks"] // 4)
    assert per_chip.tolist() == report["cores_per_chip"] and per_chip.max() <= 4
    assert report["traffic"].startswith("axon count")
    assert {name: sum(per.values()) for name, per in report["layers"].items()} == {
        op.result.name: len(op.attrs.chips) for op in pops}
    assert not PartitionChips(cores_per_chip=4).run(g, PassContext())  # deterministic


def test_measured_rates_scale_the_traffic():
    g = tiled()
    set_rates(g, 1.0)
    blocks = block_graph(lower(g), layer_rates(g, lower(g))[0])  # neurons reaching each block
    set_rates(g, 0.125)
    rates, source = layer_rates(g, lower(g))
    assert source.startswith("rate-weighted") and set(rates.values()) == {0.125}
    scaled = block_graph(lower(g), rates)
    assert scaled.edges.keys() == blocks.edges.keys()
    assert all(scaled.edges[e] == pytest.approx(0.125 * w) for e, w in blocks.edges.items())
    ctx = PassContext()
    PartitionChips(cores_per_chip=4).run(g, ctx)
    report = ctx.report["partition-chips"]
    total = report["interchip_spikes_per_step"] + report["intrachip_spikes_per_step"]
    assert total == pytest.approx(0.125 * sum(blocks.edges.values()), rel=1e-6)


@pytest.mark.parametrize("rate", [None, 0.25])
def test_traffic_equals_nengo_loihi_estimate_on_the_built_model(rate):
    """With rates nengo-loihi weights each axon by its neurons' rates; without, it counts
    axons (one per pixel and target block through a convolution): the pass counts both."""
    from nengo_loihi.hardware.allocators import (
        ensemble_to_block_rates,
        estimate_interchip_activity,
    )

    from snncc.targets.loihi.allocator import placement_allocator

    g = tiled(16, 0.05)
    if rate is not None:
        set_rates(g, rate)
    ctx = PassContext()
    PartitionChips(cores_per_chip=3).run(g, ctx)
    lowered = lower(g)
    _, nengo_loihi = import_nengo()
    built = build(g, lowered, {"x": np.zeros((1, 16, 16))}, probe_all=False)
    model = nengo_loihi.builder.Model(dt=g.attrs.dt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.build(built.network)
    ens = {x.op.result.name: built.ensembles[x.op.result.name] for x in lowered.chip_layers()}
    board = placement_allocator({e: g_op.op.attrs.chips for e, g_op in zip(
        ens.values(), lowered.chip_layers(), strict=True)})(model, n_chips=64)
    rates = None if rate is None else ensemble_to_block_rates(
        model, {e: np.full(e.n_neurons, rate) for e in ens.values()})
    nl = estimate_interchip_activity(board, rates)
    report = ctx.report["partition-chips"]
    assert report["traffic"].startswith("axon count" if rate is None else "rate-weighted")
    assert nl["interchip"] > 0
    assert nl["interchip"] == pytest.approx(report["interchip_spikes_per_step"], rel=1e-6)
    assert nl["intrachip"] == pytest.approx(report["intrachip_spikes_per_step"], rel=1e-6)


def test_too_few_chips_says_how_many_are_needed():
    g = tiled()
    with pytest.raises(SnnccError, match=r"partition-chips: the network needs \d+ cores, which "
                                         r"takes (\d+) chips of 4 cores, but only 2 chips are "
                                         r"available; use at least \1 chips"):
        PassManager(parse_pipeline("partition-chips{chips=2 cores-per-chip=4}")).run(g)


@pytest.mark.parametrize(("pipeline", "message"), [
    ("partition-chips{chips=0}", r"chips must be ≥ 1 \(leave it out for the fewest chips "
                                 r"that fit\), got 0"),
    ("partition-chips{chips=-1}", r"chips must be ≥ 1 .*got -1"),
    ("partition-chips{cores-per-chip=129}", r"cores-per-chip must be in 1..128 \(a Loihi "
                                            r"chip has 128 cores\), got 129"),
    ("partition-chips{cores-per-chip=0}", r"cores-per-chip must be in 1..128"),
])
def test_bad_options_are_refused_with_a_caret(pipeline, message):
    with pytest.raises(PipelineError, match=message) as err:
        parse_pipeline(pipeline)
    assert "^" in str(err.value)


def test_a_block_larger_than_a_core_is_refused():
    g = tiled(64, 1.0)
    enc = next(op for op in g.ops_of(IF) if op.result.name == "enc")
    enc.replace_attrs(block_shape=(4, 64, 64))  # 16384 neurons in one block
    with pytest.raises(SnnccError, match=r"'%enc': block 0 of block_shape \[4, 64, 64\] needs "
                                         r"16384 compartments, more than one core's 1024: it "
                                         r"is larger than a core; run tile-cores"):
        PartitionChips().run(g, PassContext())


def test_untiled_graphs_are_refused():
    g = spiking_unet(16)
    with pytest.raises(PipelineError, match=r"requires the IR property 'tiled'.*'tile-cores'"):
        PassManager(parse_pipeline("partition-chips")).run(g)
    g.with_properties("tiled")  # claimed, but no block shapes
    with pytest.raises(SnnccError, match=r"'%enc': has no block_shape; run tile-cores"):
        PartitionChips().run(g, PassContext())


def test_compile_writes_placement_report_and_plot(tmp_path, capsys):
    from models.unets import UNetSpec, export_unet

    onnx = export_unet(UNetSpec("pc", opset=13, size=16), tmp_path / "pc.onnx")
    np.save(tmp_path / "cal.npy", np.random.default_rng(0).random((2, 1, 16, 16), np.float32))
    out = tmp_path / "out"
    pipeline = ("canonicalize,fold-batchnorm,fuse-linear,convert-activations{reset=zero},"
                "scale-rates,quantize-weights,tile-cores{max-fraction=0.05},"
                "partition-chips{cores-per-chip=8}")
    assert main(["compile", str(onnx), "--target", "loihi", "-o", str(out), "-p", pipeline,
                 "--calibration", str(tmp_path / "cal.npy"), "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    placed = report["pass_reports"]["partition-chips"]
    assert placed.keys() >= KEYS and placed["traffic"].startswith("rate-weighted")
    target = report["target_report"]
    assert target["chips"] == placed["chips"] > 1
    for key in ("interchip_spikes_per_step", "intrachip_spikes_per_step", "cores_per_chip"):
        assert target[key] == placed[key]
    assert (out / target["placement_plot"]).read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "placement:" in text and f"{placed['chips']} chips" in text
