"""scale-rates: per-source scaling (skip connections, concat, add), calibration and stats
sources, the reset-to-zero compensation, golden IR, and every bad input it must refuse."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from spiking_models import analog_unet, convert, images

from snncc.cli.main import main
from snncc.data.stats import LayerStats, RateStats
from snncc.diagnostics import SnnccError
from snncc.ir import print_graph
from snncc.ir.interp.analog import run_analog
from snncc.ir.ops import IF, SpikeInput
from snncc.sim.rates import rate_model

GOLDEN = Path(__file__).parent / "golden" / "scale-rates"
CONVERTED = "fuse-linear,convert-activations"


def _relu_activations(x: np.ndarray) -> dict[str, np.ndarray]:
    graph = analog_unet()
    relus = [op for op in graph.ops if op.name == "act.relu"]
    graph.outputs = [op.result for op in relus]
    return {op.loc.node: a for op, a in zip(relus, run_analog(graph, [x]), strict=True)}


def _stats_file(path: Path, x: np.ndarray, drop: str | None = None,
                extra: str | None = None) -> Path:
    layers = {node: LayerStats.from_values(a, 99.9)
              for node, a in _relu_activations(x).items() if node != drop}
    if extra:
        layers[extra] = LayerStats(1.0, 1.0, 0.5, 10)
    RateStats(dt=0.001, percentile=99.9, rate_scale_hz=250.0, layers=layers).save(path)
    return path


def test_every_projection_is_scaled_by_its_own_source():
    """With soft reset and no compensation, the normalized graph's rate model computes the
    ANN exactly, although the layers joined by the residual add and the concat have
    different scales."""
    graph = analog_unet()
    x = images(8)
    want = run_analog(graph, [x])[0]
    ctx = convert(graph, f"{CONVERTED},scale-rates{{compensate=false}}", calibration=x)
    layers = ctx.report["scale-rates"]["layers"]
    scales = [layers[n]["scale"] for n in ("enc_relu", "mid_relu", "res_relu", "up_relu")]
    assert len({round(s, 6) for s in scales}) == 4
    np.testing.assert_allclose(run_analog(rate_model(graph).graph, [x])[0], want, atol=1e-5)


def test_percentile_activation_maps_to_the_target_rate():
    graph = analog_unet()
    x = images(8)
    acts = _relu_activations(x)
    ctx = convert(graph, f"{CONVERTED},scale-rates{{percentile=99 target-rate=200}}",
                  calibration=x)
    report = ctx.report["scale-rates"]
    assert report["spikes_per_step_at_percentile"] == pytest.approx(0.2)
    for op in graph.ops:
        if isinstance(op, IF):
            entry = report["layers"][op.result.name]
            lam = np.percentile(acts[entry["onnx_node"]], 99)
            assert entry["percentile_activation"] == pytest.approx(lam, rel=1e-5)
            assert entry["unit"] == pytest.approx(lam / 0.2, rel=1e-5)


def test_stats_file_gives_the_same_scales_as_calibration(tmp_path):
    x = images(8)
    by_data = convert(analog_unet(), f"{CONVERTED},scale-rates", calibration=x)
    by_file = convert(analog_unet(), f"{CONVERTED},scale-rates",
                      stats_file=_stats_file(tmp_path / "s.json", x))
    a, b = by_data.report["scale-rates"]["layers"], by_file.report["scale-rates"]["layers"]
    for name, entry in a.items():
        if name != "x_spikes":  # a stats file assumes images in [0, 1]
            assert b[name]["unit"] == pytest.approx(entry["unit"], rel=1e-5), name
    assert by_file.report["scale-rates"]["source"].endswith("s.json")


def test_zero_reset_compensation_raises_input_gains():
    x = images(8)
    ctx = convert(analog_unet(), "fuse-linear,convert-activations{reset=zero},scale-rates",
                  calibration=x)
    gains = [e["gain"] for n, e in ctx.report["scale-rates"]["layers"].items()
             if n != "x_spikes"]
    assert all(1.0 < g < 1.2 for g in gains)
    plain = convert(analog_unet(), "fuse-linear,convert-activations{reset=zero},"
                    "scale-rates{compensate=false}", calibration=x)
    assert {e["gain"] for e in plain.report["scale-rates"]["layers"].values()} == {1.0}


@pytest.mark.parametrize("convert_opts, scale_opts, rate", [
    ("", "", 1000.0), ("{reset=zero}", "", 500.0), ("{reset=zero}", "{target-rate=300}", 300.0),
])
def test_default_target_rate_follows_the_reset(convert_opts, scale_opts, rate):
    ctx = convert(analog_unet(), f"fuse-linear,convert-activations{convert_opts},"
                                 f"scale-rates{scale_opts}", calibration=images(4))
    assert ctx.report["scale-rates"]["target_rate_hz"] == rate


def test_golden():
    """convert-activations output → scale-rates with a stats file (the golden input has
    no RUN line: test_golden.py only round-trips it)."""
    x = images(8)
    graph = analog_unet()
    convert(graph, CONVERTED)
    stats = GOLDEN / "unet.stats.json"
    if os.environ.get("SNNCC_UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        _stats_file(stats, x)
        (GOLDEN / "unet.snnir").write_text(print_graph(graph, weights_file="unet.npz"))
        graph.weights.save(GOLDEN / "unet.npz")
    assert print_graph(graph, weights_file="unet.npz") == (GOLDEN / "unet.snnir").read_text()
    convert(graph, "scale-rates", stats_file=stats)
    got = print_graph(graph, weights_file="unet.expected.npz")
    if os.environ.get("SNNCC_UPDATE_GOLDEN"):
        (GOLDEN / "unet.expected.snnir").write_text(got)
        graph.weights.save(GOLDEN / "unet.expected.npz")
    assert got == (GOLDEN / "unet.expected.snnir").read_text()
    expected = np.load(GOLDEN / "unet.expected.npz")
    for name in expected.files:
        np.testing.assert_allclose(graph.weights[name], expected[name], rtol=1e-6)


def test_scale_rates_without_statistics_is_refused():
    graph = analog_unet()
    with pytest.raises(SnnccError) as err:
        convert(graph, f"{CONVERTED},scale-rates")
    for way in ("needs activation statistics; give them one of three ways",
                "metadata (key 'snncc.rate-stats')", "--stats FILE, or NAME.stats.json beside",
                "--calibration DIR_OR_NPY"):
        assert way in str(err.value)


def test_input_population_threshold_comes_from_the_pixels():
    graph = analog_unet()
    x = images(8) * 0.5
    convert(graph, f"{CONVERTED},scale-rates{{target-rate=500}}", calibration=x)
    op = next(graph.ops_of(SpikeInput))
    assert op.attrs.v_threshold == pytest.approx(np.percentile(x, 99.9) / 0.5, rel=1e-5)


# --- bad input through the command line -------------------------------------------------


@pytest.fixture(scope="module")
def onnx_unet(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from models.unets import UNetSpec, export_unet

    root = tmp_path_factory.mktemp("onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_unet(UNetSpec("scale", opset=13, up="convT2", width=2), root / "u.onnx")


PIPELINE = "canonicalize,fold-batchnorm,fuse-linear,convert-activations,{}quantize-weights"


def _compile(capsys, onnx: Path, out: Path, *extra: str, scale: str = "scale-rates,"
             ) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["compile", str(onnx), "--target", "numpy", "-p", PIPELINE.format(scale),
                 "-o", str(out), "--no-progress", *extra])
    return code, capsys.readouterr().err


def _onnx_relus(onnx: Path) -> list[str]:
    import onnx as onnx_lib

    return [n.name for n in onnx_lib.load(str(onnx)).graph.node if n.op_type == "Relu"]


def _write_stats(path: Path, nodes: list[str]) -> Path:
    RateStats(0.001, 99.9, 250.0, {n: LayerStats(1.0, 2.0, 0.3, 100) for n in nodes}).save(path)
    return path


def test_cli_compiles_with_calibration_and_with_stats(onnx_unet, tmp_path, capsys):
    np.save(tmp_path / "cal.npy", images(6, size=16))
    code, err = _compile(capsys, onnx_unet, tmp_path / "a", "--calibration",
                         str(tmp_path / "cal.npy"))
    assert code == 0, err
    report = json.loads((tmp_path / "a" / "report.json").read_text())["pass_reports"]
    assert report["scale-rates"]["source"] == "calibration"
    stats = _write_stats(tmp_path / "s.json", _onnx_relus(onnx_unet))
    code, err = _compile(capsys, onnx_unet, tmp_path / "b", "--stats", str(stats))
    assert code == 0, err


def test_cli_finds_the_statistics_in_the_model_then_beside_it(onnx_unet, tmp_path, capsys):
    """No --stats, no --calibration: the ONNX file's metadata, else NAME.stats.json beside
    it; with neither the error lists the three ways."""
    from snncc.data.stats import embed_onnx_stats, read_onnx_stats

    model = tmp_path / "m.onnx"
    model.write_bytes(onnx_unet.read_bytes())
    code, err = _compile(capsys, model, tmp_path / "none")
    assert code == 1 and "give them one of three ways" in err and "--calibration" in err
    stats = _write_stats(tmp_path / "m.stats.json", _onnx_relus(onnx_unet))
    code, err = _compile(capsys, model, tmp_path / "sidecar")
    assert code == 0, err
    report = json.loads((tmp_path / "sidecar" / "report.json").read_text())["pass_reports"]
    assert report["scale-rates"]["source"] == str(stats)
    embed_onnx_stats(model, RateStats.load(stats))
    stats.unlink()
    assert read_onnx_stats(model) == RateStats.load(_write_stats(tmp_path / "s.json",
                                                                 _onnx_relus(onnx_unet)))
    code, err = _compile(capsys, model, tmp_path / "embedded")
    assert code == 0, err
    report = json.loads((tmp_path / "embedded" / "report.json").read_text())["pass_reports"]
    assert report["scale-rates"]["source"] == f"{model} (metadata 'snncc.rate-stats')"
    for name in ("model.snnir", "weights.npz"):
        assert (tmp_path / "embedded" / name).read_bytes() == (
            tmp_path / "sidecar" / name).read_bytes()


def test_cli_refuses_broken_embedded_statistics(onnx_unet, tmp_path, capsys):
    import onnx as onnx_lib

    proto = onnx_lib.load(str(onnx_unet))
    onnx_lib.helper.set_model_props(proto, {"snncc.rate-stats": '{"format": "x"'})
    onnx_lib.save(proto, str(tmp_path / "m.onnx"))
    code, err = _compile(capsys, tmp_path / "m.onnx", tmp_path / "out")
    assert code == 1
    assert "m.onnx: metadata 'snncc.rate-stats' holds no usable rate statistics" in err


def test_shipped_model_carries_its_statistics():
    from snncc.data.stats import read_onnx_stats

    shipped = Path(__file__).resolve().parents[1] / "examples" / "em_unet"
    assert read_onnx_stats(shipped / "unet.onnx") == RateStats.load(shipped / "unet.stats.json")


@pytest.mark.parametrize("array, message", [
    (np.zeros((4, 3, 16, 16), np.float32),
     r"calibration data of shape \[4, 3, 16, 16\] does not fit the model input"),
    (np.zeros((2, 1, 8, 8), np.float32), r"calibration images are 8x8, smaller than the model"),
    (np.zeros((0, 1, 16, 16), np.float32), r"the calibration set is empty"),
])
def test_cli_bad_calibration(onnx_unet, tmp_path, capsys, array, message):
    path = tmp_path / "cal.npy"
    np.save(path, array)
    code, err = _compile(capsys, onnx_unet, tmp_path / "out", "--calibration", str(path))
    assert code == 1
    assert str(path) in err and "Traceback" not in err
    assert __import__("re").search(message, err), err


def test_cli_empty_calibration_directory(onnx_unet, tmp_path, capsys):
    (tmp_path / "cal").mkdir()
    code, err = _compile(capsys, onnx_unet, tmp_path / "out", "--calibration",
                         str(tmp_path / "cal"))
    assert code == 1
    assert f"{tmp_path / 'cal'}: no calibration images" in err


def test_cli_stats_missing_and_unknown_layers(onnx_unet, tmp_path, capsys):
    relus = _onnx_relus(onnx_unet)
    missing = _write_stats(tmp_path / "missing.json", relus[1:])
    code, err = _compile(capsys, onnx_unet, tmp_path / "out", "--stats", str(missing))
    assert code == 1
    assert f"{missing}: no statistics for the Relu node(s) {relus[0]}" in err
    unknown = _write_stats(tmp_path / "unknown.json", [*relus, "/nowhere/Relu"])
    code, err = _compile(capsys, onnx_unet, tmp_path / "out", "--stats", str(unknown))
    assert code == 1
    assert f"{unknown}: names layer(s) /nowhere/Relu, which are not Relu nodes" in err
    code, err = _compile(capsys, onnx_unet, tmp_path / "out", "--stats",
                         str(tmp_path / "none.json"))
    assert code == 1 and "none.json: stats file not found (--stats)" in err
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    code, err = _compile(capsys, onnx_unet, tmp_path / "out", "--stats",
                         str(tmp_path / "bad.json"))
    assert code == 1 and "bad.json: not a usable rate stats file: format must be" in err


def test_cli_stats_with_another_percentile(onnx_unet, tmp_path, capsys):
    stats = _write_stats(tmp_path / "s.json", _onnx_relus(onnx_unet))
    code, err = _compile(capsys, onnx_unet, tmp_path / "out", "--stats", str(stats),
                         scale="scale-rates{percentile=99},")
    assert code == 1
    assert "holds the 99.9th percentile of each layer's activations but scale-rates asks " \
           "for the 99th" in err


@pytest.mark.parametrize("option, message", [
    ("percentile=0", "scale-rates: percentile must be in (0, 100], got 0"),
    ("percentile=100.5", "scale-rates: percentile must be in (0, 100], got 100.5"),
    ("target-rate=1500", "target-rate 1500 Hz at dt = 1 ms asks for 1.5 spikes per step, "
                         "but a neuron spikes at most once per step (Loihi too): use at most "
                         "1000 Hz"),
    ("target-rate=0", "scale-rates: target-rate must be > 0 Hz, got 0"),
])
def test_cli_bad_scale_rates_options(onnx_unet, tmp_path, capsys, option, message):
    np.save(tmp_path / "cal.npy", images(2, size=16))
    code, err = _compile(capsys, onnx_unet, tmp_path / "out", "--calibration",
                         str(tmp_path / "cal.npy"), scale=f"scale-rates{{{option}}},")
    assert code == 1
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
