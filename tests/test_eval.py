"""`snncc eval` end to end on a small compiled U-Net: JSON, table, plots, energy, bad input."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from snncc.cli.main import main

PIPELINE = "canonicalize,fold-batchnorm,fuse-linear,convert-activations,scale-rates," \
    "quantize-weights"


def _write_pngs(root: Path, size: int, count: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for sub in ("image", "label"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = (rng.random((size, size)) * 255).astype(np.uint8)
        label = np.where(rng.random((size, size)) < 0.6, 255, 0).astype(np.uint8)
        Image.fromarray(image).save(root / "image" / f"{i}.png")
        Image.fromarray(label).save(root / "label" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    """A 16×16 U-Net (transposed-conv upsampling, concat skips) compiled to spiking IR."""
    pytest.importorskip("torch")
    from models.unets import UNetSpec, export_unet

    root = tmp_path_factory.mktemp("eval")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx = export_unet(UNetSpec("eval", opset=13, up="convT2", width=2), root / "u.onnx")
    np.save(root / "cal.npy", np.random.default_rng(1).random((8, 1, 16, 16), np.float32))
    out = root / "out"
    assert main(["compile", str(onnx), "--target", "numpy", "-p", PIPELINE, "--calibration",
                 str(root / "cal.npy"), "-o", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Two labelled 24×24 images: overlap-tiled by 16×16 tiles with the default margin 4,
    each is covered by 3×3 tile centres of 8×8."""
    return _write_pngs(tmp_path_factory.mktemp("data"), 24, 2)


def _eval(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["eval", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_json_energy_and_plots(compiled, data, tmp_path, capsys):
    plots = tmp_path / "plots"
    code, out, err = _eval(capsys, str(compiled), "--data", str(data), "--timesteps", "30",
                           "--sweep", "20,30", "--plots", str(plots), "--json")
    assert code == 0, err
    r = json.loads(out)
    for key in ("ann", "snn"):
        assert set(r[key]) == {"pixel_accuracy", "iou", "dice", "rand_error"}
        assert all(0.0 <= v <= 1.0 for v in r[key].values())
    assert r["timesteps"] == 30 and r["mode"] == "ideal"
    assert r["mean_rate_hz"] > 0
    assert r["images"] == 2 and r["inferences"] == 18
    assert r["scored"] == "whole images" and r["margin"] == 4
    assert r["head"] == "sigmoid" and r["decision"] == "sigmoid head, probability > 0.5"
    assert [row["image"] for row in r["per_image"]] == ["0", "1"]
    assert [row["timesteps"] for row in r["sweep"]] == [20, 30]
    e = r["energy"]
    assert e["timesteps"] == 30
    for part in ("synaptic_ops", "neuron_updates", "spikes_within_chip", "static", "total"):
        assert e["loihi"][part] > 0
    assert e["loihi"]["spikes_between_chips"] == 0.0
    assert "counted as zero" in e["loihi_counts"]["placement"]
    assert e["ann"]["macs"] > 0 and e["ann"]["cpu_seconds"] > 0
    assert all(v > 0 for v in e["ratio"].values())
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["accuracy_vs_timesteps.png", "examples.png", "rate_histograms.png"]
    for p in plots.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(p) as im:
            im.verify()
    recorded = json.loads((compiled / "report.json").read_text())["evaluation"]
    assert recorded["energy"] == e and "per_image" not in recorded


def test_eval_table_crops_and_energy_override(compiled, data, tmp_path, capsys):
    constants = tmp_path / "e.json"
    constants.write_text(json.dumps({"synop_pj": 0, "neuron_update_active_pj": 0,
                                     "neuron_update_idle_pj": 0, "spike_in_tile_pj": 0,
                                     "tile_hop_pj": 0}))
    code, out, err = _eval(capsys, str(compiled), "--data", str(data), "--timesteps", "20",
                           "--crops", "3", "--mode", "loihi", "--energy-constants",
                           str(constants), "--indices", "1", "--no-record")
    assert code == 0, err
    assert ("3 crop(s) (3 inference(s) of the model input), sigmoid head, probability > 0.5, "
            "T = 20, mode loihi") in out
    assert out.count("ANN") >= 1 and "SNN" in out and "energy per inference at T = 20" in out
    assert "inter-chip spikes counted as zero" in out
    code, out, _ = _eval(capsys, str(compiled), "--data", str(data), "--timesteps", "20",
                         "--energy-constants", str(constants), "--json", "--no-record")
    loihi = json.loads(out)["energy"]["loihi"]
    assert loihi["synaptic_ops"] == 0 and loihi["total"] == pytest.approx(loihi["static"])


def test_table_says_what_signs_mean_and_figures_are_captioned(compiled, data, capsys):
    from snncc.evaluate.plots import _row_label, caption

    code, out, err = _eval(capsys, str(compiled), "--data", str(data), "--timesteps", "30",
                           "--sweep", "20,30", "--no-record")
    assert code == 0, err
    assert "(ANN − SNN " in out and "positive: the SNN is behind" in out
    assert "ANN energy / Loihi energy (above 1: Loihi uses less)" in out
    summary = {"crops_per_image": 0, "margin": 4, "mode": "loihi", "timesteps": 30,
               "dt": 0.001, "decision": "sigmoid head, probability > 0.5"}
    assert caption(summary, "u.onnx") == (
        "u.onnx; SNN on the numpy simulator, loihi mode, T = 30 steps of 1 ms; whole images, "
        "overlap-tiled (margin 4 px); sigmoid head, probability > 0.5")
    assert _row_label("20#0") == "image 20\ncrop 1" and _row_label("7") == "image 7"


def test_calibration_is_recorded_and_overlap_warned(compiled, data, tmp_path, capsys):
    """Calibrating on the images eval scores fits the SNN's scale on its test set: the
    compile records which files it used, eval warns and lists the overlap."""
    out = tmp_path / "cal"
    onnx = compiled.parent / "u.onnx"
    assert main(["compile", str(onnx), "--target", "numpy", "-p", PIPELINE, "--calibration",
                 str(data), "-o", str(out), "--no-progress"]) == 0
    recorded = json.loads((out / "report.json").read_text())["calibration"]
    assert recorded["images"] == 2 and recorded["model_inputs"] == 8  # 2×2 plain tiles each
    assert recorded["files"] == [str((data / "image" / f"{i}.png").resolve()) for i in (0, 1)]
    code, text, err = _eval(capsys, str(out), "--data", str(data), "--indices", "1",
                            "--timesteps", "20", "--json", "--no-record")
    assert code == 0, err
    assert "warning: image(s) 1 were also calibration images" in err
    assert json.loads(text)["calibration_overlap"] == ["1"]
    code, text, err = _eval(capsys, str(compiled), "--data", str(data), "--timesteps", "20",
                            "--json", "--no-record")  # calibrated on an .npy array
    assert "warning" not in err and json.loads(text)["calibration_overlap"] == []


def _bad(capsys, *args: str) -> str:
    code, _, err = _eval(capsys, *args)
    assert code == 1, err
    assert "Traceback" not in err
    return err


def test_bad_inputs(compiled, data, tmp_path, capsys):
    d = str(data)
    assert "no such directory" in _bad(capsys, str(tmp_path / "nope"), "--data", d)
    assert "not a compiled directory" in _bad(capsys, str(tmp_path), "--data", d)
    assert "no such directory (--data)" in _bad(capsys, str(compiled), "--data",
                                                  str(tmp_path / "nodata"))
    (tmp_path / "empty" / "image").mkdir(parents=True)
    (tmp_path / "empty" / "label").mkdir()
    assert "no images found" in _bad(capsys, str(compiled), "--data", str(tmp_path / "empty"))
    unpaired = _write_pngs(tmp_path / "unpaired", 24, 1)
    (unpaired / "label" / "0.png").unlink()
    assert "label missing" in _bad(capsys, str(compiled), "--data", str(unpaired))
    mismatched = _write_pngs(tmp_path / "mismatched", 24, 1)
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(mismatched / "label" / "0.png")
    assert "label is 24x20 but its image is 24x24" in _bad(capsys, str(compiled), "--data",
                                                          str(mismatched))
    small = _write_pngs(tmp_path / "small", 8, 1)
    assert "smaller than the model input 16x16" in _bad(capsys, str(compiled), "--data",
                                                        str(small))
    assert "source ONNX model is not there" in _bad(capsys, str(compiled), "--data", d,
                                                    "--onnx", str(tmp_path / "x.onnx"))
    from models.unets import UNetSpec, export_unet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = export_unet(UNetSpec("other", opset=13, size=24, width=2), tmp_path / "o.onnx")
    assert "is this the model it was compiled from" in _bad(capsys, str(compiled), "--data", d,
                                                           "--onnx", str(other))
    bad_constants = tmp_path / "c.json"
    bad_constants.write_text('{"synop": 1}')
    assert "unknown energy constants ['synop']" in _bad(capsys, str(compiled), "--data", d,
                                                        "--energy-constants",
                                                        str(bad_constants))


def test_analog_only_directory_is_refused(compiled, data, tmp_path, capsys):
    onnx = tmp_path / "u.onnx"
    shutil.copy(compiled.parent / "u.onnx", onnx)
    assert main(["compile", str(onnx), "--target", "numpy", "-o", str(tmp_path / "analog"),
                 "--no-progress"]) == 0
    err = _bad(capsys, str(tmp_path / "analog"), "--data", str(data))
    assert "no spiking populations" in err


def test_bad_sweep_is_a_usage_error(compiled, data, capsys):
    code, _, err = _eval(capsys, str(compiled), "--data", str(data), "--sweep", "10,x")
    assert code == 2 and "--sweep '10,x'" in err
