"""tile-cores: block shapes from Loihi's per-core limits, counted as nengo-loihi counts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loihi_graphs import spiking_unet, wide_layer

from snncc.diagnostics import SnnccError
from snncc.hw.loihi.geometry import lower
from snncc.hw.loihi.limits import LIMITS, CoreUse
from snncc.ir import Graph, OnnxLoc, TensorType
from snncc.ir.ops import IF, Dense, Readout, SpikeInput
from snncc.passes.tile_cores import TileCores, candidate_shapes
from snncc.pipeline import PassContext, PipelineError, parse_pipeline
from snncc.pipeline.registry import PASSES
from snncc.targets.loihi.builder import build, import_nengo


@pytest.fixture(autouse=True, scope="module")
def registered():
    if "tile-cores" not in PASSES.names():
        PASSES.add(TileCores)
    yield


def nengo_loihi_use(graph: Graph) -> dict[str, list[tuple[int, int, int, int]]]:
    """Per population, nengo-loihi's own utilisation of each block after its build."""
    _, nengo_loihi = import_nengo()
    lowered = lower(graph)
    built = build(graph, lowered, {"x": np.zeros(graph.inputs[0].type.shape[1:])})
    model = nengo_loihi.builder.Model(dt=graph.attrs.dt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model.build(built.network)  # splits, discretizes and validates every block
    out = {}
    for layer in lowered.chip_layers():
        blocks = model.objs[built.ensembles[layer.op.result.name]]["out"]
        blocks = blocks if isinstance(blocks, list) else [blocks]
        out[layer.op.result.name] = [
            tuple(u[k][0] for k in ("compartments", "in-axons", "out-axons", "synapses"))
            for u in (b.utilization() for b in blocks)]
    return out


def our_use(graph: Graph) -> dict[str, list[tuple[int, int, int, int]]]:
    lowered = lower(graph)
    counter = CoreUse(lowered)
    shapes = {id(x.op): x.op.attrs.block_shape for x in lowered.chip_layers()}
    return {x.op.result.name: [(u["compartments"], u["in_axons"], u["out_axons"],
                                u["synapse_bits"]) for u in counter.layer(
                                    x, x.op.attrs.block_shape, shapes)]
            for x in lowered.chip_layers()}


@pytest.mark.parametrize("fraction", [1.0, 0.3, 0.05])
def test_counts_equal_nengo_loihi_per_block(fraction):
    g = spiking_unet(16)
    TileCores(max_fraction=fraction).run(g, PassContext())
    ours, theirs = our_use(g), nengo_loihi_use(g)
    assert ours == theirs
    if fraction < 1:
        assert sum(len(v) for v in ours.values()) > 3  # the limits forced real splits


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c_in=st.integers(1, 48), c_out=st.integers(1, 12), size=st.integers(3, 20),
       kernel=st.sampled_from([1, 3, 5]), fraction=st.sampled_from([1.0, 0.2, 0.02]))
def test_every_block_fits_every_limit(c_in, c_out, size, kernel, fraction):
    g = wide_layer(c_in, c_out, size, kernel)
    tile = TileCores(max_fraction=fraction)
    tile.run(g, PassContext())
    theirs = nengo_loihi_use(g)  # nengo-loihi's own validation raises on any overflow
    assert theirs == our_use(g)
    limits = tile.limits()
    for blocks in theirs.values():
        for comps, in_axons, out_axons, bits in blocks:
            assert comps <= limits["compartments"] and in_axons <= limits["in_axons"]
            assert out_axons <= limits["out_axons"] and bits <= limits["synapse_bits"]


def test_fewest_cores_first():
    g = wide_layer(2, 8, 32, 3)  # 8×32×32 = 8192 neurons: at least 8 cores
    ctx = PassContext()
    TileCores().run(g, ctx)
    assert ctx.report["tile-cores"]["cores"] == 8
    s = next(op for op in g.ops if op.result.name == "s")
    assert np.prod(s.attrs.block_shape) == 1024
    use = ctx.report["tile-cores"]["use"]
    assert set(use) == set(LIMITS)
    assert use["compartments"]["max"] == 1024 and use["compartments"]["mean"] == 1024
    assert 0 < use["synapse_bits"]["mean"] <= use["synapse_bits"]["max"] <= LIMITS["synapse_bits"]


def test_prefer_axons_keeps_the_core_count_and_sends_fewer_axons():
    room, axons = spiking_unet(16), spiking_unet(16)
    TileCores(max_fraction=0.05).run(room, PassContext())
    TileCores(max_fraction=0.05, prefer="axons").run(axons, PassContext())
    use_room, use_axons = our_use(room), our_use(axons)
    assert {k: len(v) for k, v in use_room.items()} == {k: len(v) for k, v in use_axons.items()}
    in_room = {k: sum(b[1] for b in v) for k, v in use_room.items()}
    in_axons = {k: sum(b[1] for b in v) for k, v in use_axons.items()}
    assert all(in_axons[k] <= in_room[k] for k in in_room)
    assert sum(in_axons.values()) < sum(in_room.values())
    assert use_axons == nengo_loihi_use(axons)  # and every block still fits


def test_candidates_are_ordered_and_within_size():
    cands = candidate_shapes((8, 64, 64), 1024)
    counts = [c for c, _ in cands]
    assert counts == sorted(counts) and counts[0] == 32
    assert all(np.prod(b) <= 1024 for _, b in cands)


def test_layer_that_cannot_fit_names_layer_limit_and_numbers():
    g = Graph("fat")
    g.with_properties("spiking")
    x = g.add_input("x", TensorType((1, 5000)))
    s_in = g.add(SpikeInput, [x], name="inp")
    w = g.weights.add("w", np.ones((4, 5000), np.float32))
    d = g.add(Dense, [s_in], Dense.Attrs(w), name="fc")
    s = g.add(IF, [d], IF.Attrs(reset="zero"), name="s",
              loc=OnnxLoc("fat.onnx", "/fc/Relu", "Relu"))
    g.outputs = [g.add(Readout, [g.add(Dense, [s], Dense.Attrs(
        g.weights.add("o", np.ones((1, 4), np.float32))))])]
    with pytest.raises(SnnccError) as err:
        TileCores().run(g, PassContext())
    msg = str(err.value)
    assert "fat.onnx: ONNX node '/fc/Relu'" in msg
    assert "5000 input axons" in msg and "limit of 4096" in msg


def test_analog_graph_is_refused_with_what_to_run():
    from irbuild import tiny_unet

    with pytest.raises(SnnccError, match=r"no spiking population.*run convert-activations"):
        TileCores().run(tiny_unet(), PassContext())


def test_option_range_is_checked():
    with pytest.raises(PipelineError, match="max-fraction must be in"):
        parse_pipeline("tile-cores{max-fraction=0}")
    with pytest.raises(PipelineError, match="prefer must be room or axons, got fast"):
        parse_pipeline("tile-cores{prefer=fast}")
