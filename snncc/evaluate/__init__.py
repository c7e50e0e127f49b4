"""Evaluation: segmentation metrics, the ANN-versus-SNN comparison on labelled images and
its energy estimate (plots in `snncc.evaluate.plots`, which imports matplotlib)."""

from snncc.evaluate.compare import (
    EvalSettings,
    Evaluation,
    OnnxModel,
    evaluate,
)
from snncc.evaluate.compiled import load_compiled
from snncc.evaluate.energy_report import energy_report, onnx_macs
from snncc.evaluate.metrics import METRICS, Head, output_head, rand_error, segmentation_metrics
from snncc.evaluate.traffic import ChipTraffic, chip_traffic

__all__ = [
    "METRICS",
    "ChipTraffic",
    "EvalSettings",
    "Evaluation",
    "Head",
    "OnnxModel",
    "chip_traffic",
    "energy_report",
    "evaluate",
    "load_compiled",
    "onnx_macs",
    "output_head",
    "rand_error",
    "segmentation_metrics",
]
