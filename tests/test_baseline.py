"""`snncc baseline` and the baseline comparison: the CPU path for real, the meters' logic
with stand-ins for RAPL's sysfs and NVML (no such device here), the torch ANN against
onnxruntime, and Loihi against baseline files in compile and eval."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from snncc.cli.main import main
from snncc.diagnostics import SnnccError
from snncc.evaluate import baseline as baseline_mod
from snncc.evaluate.baseline import Workload, measure
from snncc.evaluate.baseline_report import (
    FORMAT,
    baseline_lines,
    compare_baselines,
    load_baseline,
    model_sha256,
    resolve_baselines,
)
from snncc.evaluate.meters import NvmlMeter, StatedPowerMeter, find_rapl, nvml_meter, open_nvml
from snncc.hw.energy import XEON_TDP_W_PER_CORE

FAST = ["--repeats", "2", "--seconds", "0.02", "--idle-seconds", "0.01", "--batch", "4"]


@pytest.fixture(scope="module")
def unet(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from models.unets import UNetSpec, export_unet

    path = tmp_path_factory.mktemp("bl") / "u.onnx"
    return export_unet(UNetSpec("bl", opset=13, up="convT2", width=2), path)


@pytest.fixture
def no_rapl(monkeypatch):
    """This machine has no RAPL; make that so wherever the tests run."""
    monkeypatch.setattr(baseline_mod, "find_rapl", lambda: (None, "no RAPL: test"))


# the CPU path, for real ---------------------------------------------------------------------
def test_cpu_baseline_writes_the_file_and_prints_the_table(unet, tmp_path, capsys, no_rapl):
    out = tmp_path / "cpu.json"
    assert main(["baseline", str(unet), "-o", str(out), "--slice", "32,32", *FAST]) == 0
    table = capsys.readouterr().out
    assert "crop_online" in table and "slice_online" in table and "median and range" in table
    data = load_baseline(out)
    assert data["format"] == FORMAT and data["device"]["kind"] == "cpu"
    assert data["model"]["sha256"] == model_sha256(unet)
    assert data["model"]["crop_shape"] == [1, 1, 16, 16] and data["model"]["macs_per_crop"] > 0
    assert data["measured"] is False and data["idle_power_w"] is None
    assert data["stated_power"] == {"watts": XEON_TDP_W_PER_CORE.watts,
                                    "source": XEON_TDP_W_PER_CORE.source,
                                    "times": "CPU time of the process"}
    assert data["no_counter"] == "no RAPL: test"
    assert data["command"].startswith(f"snncc baseline {unet} --device cpu --batch 4 ")
    assert set(data["workloads"]) == {"crop_online", "crop_batched", "slice_online"}
    assert data["workloads"]["slice_online"]["input_shape"] == [1, 1, 32, 32]
    assert data["workloads"]["crop_batched"]["batch"] == 4
    for w in data["workloads"].values():
        for key in ("seconds_per_image", "board_j_per_image", "latency_s"):
            s = w[key]
            assert 0 < s["min"] <= s["median"] <= s["max"]
        assert w["dynamic_j_per_image"] is None and len(w["calls"]) == 2


def test_stated_power_and_slice_none(unet, tmp_path, capsys, no_rapl):
    out = tmp_path / "p.json"
    assert main(["baseline", str(unet), "-o", str(out), "--slice", "none", "--power", "20",
                 "--power-source", "the wall meter", *FAST]) == 0
    data = json.loads(out.read_text())
    assert set(data["workloads"]) == {"crop_online", "crop_batched"}
    assert data["stated_power"] == {"watts": 20.0, "source": "the wall meter",
                                    "times": "wall time"}
    w = data["workloads"]["crop_online"]
    # wall time × 20 W, per repeat: energy and time are the same measurement
    assert w["board_j_per_image"]["median"] == pytest.approx(
        20 * w["seconds_per_image"]["median"], rel=1e-3)


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--device", "gpu"], 2, "--device 'gpu': expected cpu, cuda or cuda:N"),
    (["--power", "10"], 2, "--power and --power-source go together"),
    (["--seconds", "0"], 1, "--seconds must be a positive number"),
    (["--repeats", "0"], 1, "--repeats must be ≥ 1"),
    (["--slice", "x"], 2, "--slice 'x': expected H,W"),
    (["--slice", "0,5"], 1, "--slice '0,5': sizes must be ≥ 1"),
    (["-o", "out.txt"], 2, "expected a file ending in .json"),
])
def test_bad_options_are_refused_before_work(unet, capsys, args, code, message):
    assert main(["baseline", str(unet), *args]) == code
    assert message in capsys.readouterr().err


def test_missing_model(tmp_path, capsys):
    assert main(["baseline", str(tmp_path / "no.onnx")]) == 1
    assert "no.onnx: no such file" in capsys.readouterr().err


# measurement logic ----------------------------------------------------------------------------
class CountingMeter:
    """A counter that adds `per_call` joules each time the workload runs."""

    method, measured = "test counter", True

    def __init__(self, per_call: float) -> None:
        self.per_call, self.total = per_call, 0.0

    def joules(self) -> float:
        return self.total


def test_measure_divides_by_images_and_subtracts_idle():
    meter = CountingMeter(2.0)

    def run() -> None:
        meter.total += meter.per_call

    w = measure(Workload("crop_batched", "test", "crop", (4, 1, 8, 8), run), meter,
                idle_w=1.0, repeats=1, min_seconds=0.01)
    assert w["board_j_per_image"]["median"] == pytest.approx(0.5)  # 2 J per call of 4
    seconds = w["seconds_per_image"]["median"]
    assert w["dynamic_j_per_image"]["median"] == pytest.approx(0.5 - 1.0 * seconds)
    assert w["latency_s"]["median"] == pytest.approx(4 * seconds)
    assert w["batch"] == 4 and w["calls"][0] >= 1


# RAPL with a stand-in sysfs ----------------------------------------------------------------
def _domain(root: Path, name: str, energy: int, wrap: int = 1000) -> Path:
    d = root / name
    d.mkdir()
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{wrap - 1}\n")
    return d


def test_rapl_sums_packages_and_survives_a_wrap(tmp_path):
    p0 = _domain(tmp_path, "intel-rapl:0", 900)
    _domain(tmp_path, "intel-rapl:1", 100)
    _domain(tmp_path, "intel-rapl:0:0", 5)  # a subdomain (core): inside package 0, not added
    meter, why = find_rapl(tmp_path)
    assert meter is not None and why == "" and len(meter.domains) == 2
    assert meter.joules() == 0.0  # the first reading after find_rapl's
    (p0 / "energy_uj").write_text("50\n")  # wrapped: 900 → 999 → 0 → 50 = 150 µJ
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("130\n")
    assert meter.joules() == pytest.approx(180e-6)


def test_rapl_absent_or_unreadable_says_why(tmp_path):
    assert find_rapl(tmp_path / "none") == (None, f"no RAPL: {tmp_path / 'none'} does not "
                                                  "exist on this machine")
    assert find_rapl(tmp_path)[1].endswith("has no intel-rapl package domains")
    d = tmp_path / "intel-rapl:0"
    (d / "energy_uj").mkdir(parents=True)  # unreadable as a number
    meter, why = find_rapl(tmp_path)
    assert meter is None and "cannot read" in why and "root-only" in why


# NVML with a stand-in module ----------------------------------------------------------------
class FakeNvml(types.ModuleType):
    """The part of pynvml the meter uses; `energy_mj` None: no counter (before Volta)."""

    class NVMLError(Exception):
        pass

    def __init__(self, energy_mj: float | None) -> None:
        super().__init__("pynvml")
        self.energy_mj = energy_mj

    def nvmlInit(self) -> None:
        pass

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"gpu{index}"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> float:
        if self.energy_mj is None:
            raise self.NVMLError("Not Supported")
        return self.energy_mj

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: str) -> int:
        return 300_000


def test_nvml_counter_in_joules_and_fallback_without_it(monkeypatch):
    nvml = FakeNvml(12_500.0)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    module, handle = open_nvml(1)
    assert handle == "gpu1"
    meter, why = nvml_meter(module, handle)
    assert isinstance(meter, NvmlMeter) and why == "" and meter.joules() == 12.5
    nvml.energy_mj = None
    meter, why = nvml_meter(module, handle)
    assert isinstance(meter, StatedPowerMeter) and meter.power.watts == 300.0
    assert "enforced power limit" in meter.method and "no energy counter" in why


def test_without_nvidia_ml_py_cuda_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(SnnccError, match="pip install nvidia-ml-py"):
        open_nvml(0)


# the torch ANN (CPU torch here; the same module runs under CUDA graphs) ---------------------
@pytest.mark.parametrize("spec", [
    dict(up="resize"), dict(up="convT4", residual=True), dict(head="softmax", classes=2),
])
def test_torch_ann_matches_onnxruntime(tmp_path, spec):
    torch = pytest.importorskip("torch")
    import onnxruntime as ort
    from models.unets import UNetSpec, export_unet

    from snncc.evaluate.torch_ann import TorchAnn
    from snncc.frontend.onnx import import_onnx

    path = export_unet(UNetSpec("t", opset=13, width=2, **spec), tmp_path / "t.onnx")
    x = np.random.default_rng(0).random((1, 1, 16, 16), np.float32)
    session = ort.InferenceSession(str(path))
    want = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.inference_mode():
        got = TorchAnn(import_onnx(path)).eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_torch_ann_names_ops_it_cannot_run():
    pytest.importorskip("torch")
    from irbuild import tiny_spiking

    from snncc.evaluate.torch_ann import TorchAnn

    with pytest.raises(SnnccError, match="the torch baseline cannot run these ops") as err:
        TorchAnn(tiny_spiking())
    assert "onnxruntime's CUDA provider" in str(err.value)


# the comparison ---------------------------------------------------------------------------
def _baseline(model: Path | None = None, dynamic: bool = True) -> dict:
    """A baseline file's contents with round numbers (test data, not a measurement)."""

    def w(shape: list[int], seconds: float, joules: float) -> dict:
        return {"input_shape": shape, "batch": shape[0],
                "seconds_per_image": {"median": seconds, "min": seconds, "max": seconds},
                "board_j_per_image": {"median": joules, "min": joules / 2, "max": joules * 2},
                "dynamic_j_per_image": ({"median": joules / 2, "min": joules / 4,
                                         "max": joules} if dynamic else None)}

    return {"format": FORMAT, "device": {"name": "Test GPU", "kind": "cuda"},
            "method": "test", "measured": dynamic, "date": "2026-01-01",
            "model": {"sha256": model_sha256(model) if model else "0" * 64,
                      "crop_shape": [1, 1, 64, 64]},
            "workloads": {"crop_online": w([1, 1, 64, 64], 1e-3, 0.02),
                          "crop_batched": w([256, 1, 64, 64], 1e-5, 0.002),
                          "slice_online": w([1, 1, 512, 512], 5e-3, 0.2)}}


ENERGY = {"loihi": {"total": 0.005}, "timesteps": 100, "constants": {"loihi_step_s": 50e-6}}


def test_compare_per_crop_and_per_slice():
    (row,) = compare_baselines(ENERGY, (1, 1, 64, 64), [(Path("b.json"), _baseline())],
                               margin=0)
    online = row["per_crop"]["online"]
    assert online["board_ratio"] == pytest.approx(4.0)
    assert online["board_ratio_range"] == pytest.approx([2.0, 8.0])
    assert online["dynamic_ratio"] == pytest.approx(2.0)
    assert online["loihi_seconds"] == pytest.approx(5e-3)
    assert row["per_crop"]["batched"]["board_ratio"] == pytest.approx(0.4)
    s = row["per_slice"]
    assert s["tiles"] == 64 and s["slice"] == [512, 512] and s["margin"] == 0
    assert s["online"]["loihi_j"] == pytest.approx(0.32)
    assert s["online"]["board_ratio"] == pytest.approx(0.2 / 0.32)
    assert s["batched"]["ann_board_j"] == pytest.approx(64 * 0.002)
    assert s["batched"]["ann_from"] == "crop_batched × 64 tiles"
    lines = baseline_lines({"baselines": [row]})
    assert lines[0].startswith("  vs Test GPU (energy counter), per crop: online ANN 20 mJ board, "
                               "10 mJ dynamic → ANN/Loihi 4× board, 2× dynamic")
    assert ("per 512×512 slice (64 tiles on Loihi, overlap margin 0): Loihi 320 mJ in 0.32 s"
            in lines[1])
    # as `snncc run` segments a slice: overlap-tiled, 16-pixel margins, 32×32 centres
    (row,) = compare_baselines(ENERGY, (1, 1, 64, 64), [(Path("b.json"), _baseline())])
    assert row["per_slice"]["margin"] == 16 and row["per_slice"]["tiles"] == 256
    assert row["per_slice"]["online"]["loihi_j"] == pytest.approx(256 * 0.005)


def test_compare_refuses_a_baseline_of_other_inputs():
    with pytest.raises(SnnccError, match=r"b.json: measured on inputs of shape \[1, 64, 64\], "
                                         r"the compiled graph takes \[1, 16, 16\]"):
        compare_baselines(ENERGY, (1, 1, 16, 16), [(Path("b.json"), _baseline())])


@pytest.mark.parametrize(("content", "message"), [
    ("{", "cannot read the baseline file"),
    ('{"format": "x"}', "not an snncc baseline file"),
    (json.dumps({**_baseline(), "workloads": {}}), 'has no "crop_online" workload'),
    (json.dumps({**_baseline(), "method": 3}), '"method" is missing or not a str'),
    (json.dumps(_baseline()).replace('"median": 0.001', '"median": NaN', 1),
     "workloads.crop_online.seconds_per_image must be an object of finite numbers"),
])
def test_bad_baseline_files_are_named(tmp_path, content, message):
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(SnnccError, match=message) as err:
        load_baseline(path)
    assert err.value.exit_code == 1 and str(path) in str(err.value)


def test_default_baselines_are_those_measured_on_the_model(unet, tmp_path):
    model = tmp_path / "m.onnx"
    shutil.copy(unet, model)
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "mine.json").write_text(json.dumps(_baseline(model)))
    (tmp_path / "baselines" / "old.json").write_text(json.dumps(_baseline()))
    with pytest.warns(UserWarning, match="old.json was measured on another model file"):
        chosen = resolve_baselines([], model, (1, 1, 64, 64))
    assert [p.name for p, _ in chosen] == ["mine.json"]
    with pytest.warns(UserWarning, match="sha256 differs"):
        chosen = resolve_baselines([tmp_path / "baselines" / "old.json"], model,
                                   (1, 1, 64, 64))
    assert [p.name for p, _ in chosen] == ["old.json"]  # given explicitly: used


def test_compile_and_eval_report_loihi_against_baselines(unet, tmp_path, capsys, no_rapl):
    model = tmp_path / "u.onnx"
    shutil.copy(unet, model)
    (tmp_path / "baselines").mkdir()
    assert main(["baseline", str(model), "-o", str(tmp_path / "baselines" / "cpu.json"),
                 "--slice", "32,32", *FAST]) == 0
    np.save(tmp_path / "cal.npy", np.random.default_rng(1).random((4, 1, 16, 16), np.float32))
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["compile", str(model), "--calibration", str(tmp_path / "cal.npy"), "-o",
                 str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "no energy counter: time × stated power), per crop: online ANN" in err
    assert "per 32×32 slice (16 tiles on Loihi, overlap margin 4)" in err
    estimate = json.loads((out / "report.json").read_text())["energy_estimate"]
    (row,) = estimate["baselines"]
    assert row["file"] == str(tmp_path / "baselines" / "cpu.json")
    assert set(row["per_crop"]) == {"online", "batched"} and row["per_slice"]["tiles"] == 16
    assert estimate["lower_bounds"].keys() == {"cpu_counted", "gpu_counted"}
    script = Path(__file__).resolve().parent.parent / "examples/em_unet/energy_sensitivity.py"
    sensitivity = subprocess.run([sys.executable, str(script), str(out)], capture_output=True,
                                 text=True, check=True).stdout
    assert "| `synop_pj` | 23.6 |" in sensitivity
    assert "| this U-Net, Loihi (estimate) |" in sensitivity

    data = tmp_path / "data"
    for sub in ("image", "label"):
        (data / sub).mkdir(parents=True)
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((16, 16)) * 255).astype(np.uint8)).save(data / "image/0.png")
    Image.fromarray(((rng.random((16, 16)) > 0.5) * 255).astype(np.uint8)).save(
        data / "label/0.png")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**_baseline(), "model": {"crop_shape": [1, 1, 16, 16]},
                                 "workloads": {"crop_online": {
                                     **_baseline()["workloads"]["crop_online"],
                                     "input_shape": [1, 1, 16, 16]}}}))
    assert main(["eval", str(out), "--data", str(data), "--timesteps", "60", "--json",
                 "--no-progress", "--no-record", "--baseline", str(other)]) == 0
    result = json.loads(capsys.readouterr().out)
    (row,) = result["energy"]["baselines"]
    assert row["device"] == "Test GPU" and "per_slice" not in row
    assert row["per_crop"]["online"]["board_ratio"] == pytest.approx(
        0.02 / result["energy"]["loihi"]["total"])


@pytest.mark.parametrize(("content", "message"), [
    ("[]", "not an snncc baseline file"),
    (json.dumps(_baseline()), r"measured on inputs of shape \[1, 64, 64\], the compiled graph "
                              r"takes \[1, 16, 16\]"),
])
def test_compile_refuses_a_bad_baseline_before_the_passes(unet, tmp_path, capsys, content,
                                                          message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "out"
    assert main(["compile", str(unet), "-o", str(out), "--baseline", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and re.search(message, err) and not out.exists()


def test_the_shipped_model_uses_its_shipped_baselines():
    """The reference files in examples/em_unet/baselines/ match the shipped model by its
    graph's hash, so compile and eval compare against them by default."""
    model = Path(__file__).parents[1] / "examples" / "em_unet" / "unet.onnx"
    chosen = resolve_baselines([], model, (1, 1, 64, 64))
    assert [path.name for path, _ in chosen] == sorted(
        p.name for p in (model.parent / "baselines").glob("*.json"))
