"""Segmentation heads: `snncc eval` decides foreground at the decision boundary of the
model's head — probability 0.5 after a sigmoid, logit 0 for a model exported without its
sigmoid (trained with BCEWithLogitsLoss), the argmax of a softmax — for the ANN and the
SNN alike, and `--threshold` overrides it. Real small U-Nets exported from PyTorch."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from snncc.cli.main import main
from snncc.evaluate import OnnxModel

PIPELINE = "canonicalize,fold-batchnorm,fuse-linear,convert-activations,scale-rates," \
    "quantize-weights"
SIZE = 16


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """Three labelled 16×16 images (one model input each): directory, images, labels."""
    root = tmp_path_factory.mktemp("heads-data")
    rng = np.random.default_rng(3)
    images = (rng.random((3, SIZE, SIZE)) * 255).astype(np.uint8)
    labels = rng.random((3, SIZE, SIZE)) < 0.5
    for sub in ("image", "label"):
        (root / sub).mkdir()
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(image).save(root / "image" / f"{i}.png")
        Image.fromarray((label * 255).astype(np.uint8)).save(root / "label" / f"{i}.png")
    return root, images.astype(np.float32) / 255, labels


def _centre_between_0_and_half(path: Path, images: np.ndarray) -> None:
    """Shift a one-channel logit model's head bias so that its median logit lies at 0.25:
    half of the pixels then fall where thresholds 0 and 0.5 decide differently."""
    import onnx
    from onnx import numpy_helper

    out = OnnxModel(path)(images[:, None])
    model = onnx.load(path)
    bias = next(t for t in model.graph.initializer if t.name == "head.bias")
    shifted = numpy_helper.to_array(bias) + np.float32(0.25 - np.median(out))
    bias.CopyFrom(numpy_helper.from_array(shifted.astype(np.float32), "head.bias"))
    onnx.save(model, path)


def _compiled(tmp_path_factory, head: str, classes: int, images: np.ndarray) -> Path:
    pytest.importorskip("torch")
    from models.unets import UNetSpec, export_unet

    root = tmp_path_factory.mktemp(f"head-{head}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx = export_unet(UNetSpec(head, opset=13, up="convT2", width=2, head=head,
                                    classes=classes), root / "u.onnx")
    if head == "logits" and classes == 1:
        _centre_between_0_and_half(onnx, images)
    np.save(root / "cal.npy", np.random.default_rng(1).random((8, 1, SIZE, SIZE), np.float32))
    out = root / "out"
    assert main(["compile", str(onnx), "--target", "numpy", "-p", PIPELINE, "--calibration",
                 str(root / "cal.npy"), "-o", str(out), "--no-progress"]) == 0
    return out


def _eval(capsys, compiled: Path, data: Path, *flags: str) -> dict:
    capsys.readouterr()
    code = main(["eval", str(compiled), "--data", str(data), "--timesteps", "40", "--json",
                 "--no-record", "--no-progress", *flags])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _ann_accuracy(compiled: Path, images: np.ndarray, labels: np.ndarray, decide) -> float:
    ann = OnnxModel(compiled.parent / "u.onnx")
    out = ann(images[:, None].astype(np.float32))
    return float(np.mean([(decide(o) == lab).mean() for o, lab in zip(out, labels, strict=True)]))


@pytest.mark.parametrize(("head", "classes", "decision"), [
    ("sigmoid", 1, "sigmoid head, probability > 0.5"),
    ("logits", 1, "logits head, logit > 0"),
    ("softmax", 2, "softmax head, argmax of 2 classes (last = foreground)"),
    ("logits", 3, "logits head, argmax of 3 classes (last = foreground)"),
])
def test_eval_decides_at_the_heads_boundary(tmp_path_factory, capsys, data, head, classes,
                                            decision):
    directory, images, labels = data
    compiled = _compiled(tmp_path_factory, head, classes, images)
    r = _eval(capsys, compiled, directory)
    assert r["head"] == head and r["decision"] == decision and r["threshold"] is None
    if classes == 1:
        boundary = 0.0 if head == "logits" else 0.5
        expected = _ann_accuracy(compiled, images, labels, lambda o: o[0] > boundary)
    else:
        expected = _ann_accuracy(compiled, images, labels, lambda o: o.argmax(0) == classes - 1)
    assert r["ann"]["pixel_accuracy"] == pytest.approx(expected)
    assert 0.0 <= r["snn"]["pixel_accuracy"] <= 1.0


def test_threshold_overrides_and_logits_differ_from_half(tmp_path_factory, capsys, data):
    """On raw logits the old 0.5 threshold (probability 0.62) scores other pixels than the
    boundary; --threshold 0.5 reproduces it, for the ANN and the SNN."""
    directory, images, labels = data
    compiled = _compiled(tmp_path_factory, "logits", 1, images)
    out = OnnxModel(compiled.parent / "u.onnx")(images[:, None])
    assert ((out > 0) & (out <= 0.5)).mean() > 0.3  # pixels the two thresholds decide apart
    at_zero = _eval(capsys, compiled, directory)
    at_half = _eval(capsys, compiled, directory, "--threshold", "0.5")
    assert at_half["decision"] == "logits head, logit > 0.5 (--threshold)"
    assert at_half["ann"]["pixel_accuracy"] == pytest.approx(
        _ann_accuracy(compiled, images, labels, lambda o: o[0] > 0.5))
    assert at_half["ann"]["pixel_accuracy"] != at_zero["ann"]["pixel_accuracy"]
    agree = [at_zero["ann_snn_agreement"], at_half["ann_snn_agreement"]]
    assert all(0.5 < a <= 1.0 for a in agree)  # the SNN is decided at the same boundary


def test_threshold_on_multiclass_logits_is_a_usage_error(tmp_path_factory, capsys, data):
    compiled = _compiled(tmp_path_factory, "logits", 3, data[1])
    capsys.readouterr()
    code = main(["eval", str(compiled), "--data", str(data[0]), "--threshold", "0.3",
                 "--no-record", "--no-progress"])
    assert code == 2
    assert "raw scores for 3 classes, decided by their argmax" in capsys.readouterr().err
