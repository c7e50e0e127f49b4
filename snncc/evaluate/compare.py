"""ANN versus SNN on labelled images: the same pixels through onnxruntime and the simulator.

The ANN is the original ONNX model (the compiled directory's report.json names it as
`source_model`), run by onnxruntime; the SNN is the compiled graph run by the numpy
spiking simulator. Whole images (slices) larger than the model input are covered by
overlap-tiles (`Tiling`: mirrored borders, each tile contributing its centre) and scored
whole; with `crops` = K, K seeded random crops of the model's input size per image are
scored instead, each as its own image. Outputs become foreground masks at the decision
boundary of the model's head (`Head`). Energy is estimated per inference (one model input).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snncc.data.images import LabelledImages, Tiling, random_crops
from snncc.diagnostics import SnnccError
from snncc.evaluate.energy_report import energy_report, onnx_macs
from snncc.evaluate.metrics import Head, mean_metrics, output_head, segmentation_metrics
from snncc.hw.energy import EnergyConstants
from snncc.ir.graph import Graph
from snncc.ir.ops.kinds import Neurons


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate: `timesteps` None means the graph's own; `sweep` lists further
    timestep counts at which the SNN is scored again (accuracy versus T); `margin` is the
    overlap-tile margin for whole images (None:
    a quarter of the tile); `threshold` None decides at the head's decision
    boundary (see `Head`)."""

    timesteps: int | None = None
    mode: str = "ideal"
    crops: int = 0
    seed: int = 0
    batch_size: int = 16
    progress: bool = True
    sweep: tuple[int, ...] = ()
    neuron_rates: bool = False
    margin: int | None = None
    threshold: float | None = None
    constants: EnergyConstants = field(default_factory=EnergyConstants)


@dataclass
class Evaluation:
    """The JSON-ready `summary` and the arrays plots need: evaluated images, labels, the
    ANN's and SNN's foreground maps (N×H×W) and, if asked for, per-neuron rates (Hz) of
    each layer over all images."""

    summary: dict[str, Any]
    images: np.ndarray
    labels: np.ndarray
    ann: np.ndarray
    snn: np.ndarray
    neuron_rates_hz: dict[str, np.ndarray]


class OnnxModel:
    """The ANN: an onnxruntime session on the CPU, run on N×C×H×W batches."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        if not path.is_file():
            raise SnnccError(f"{path}: the source ONNX model is not there; pass --onnx PATH")
        self.path = path
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own C++ exception classes
            raise SnnccError(f"{path}: onnxruntime {ort.__version__} cannot load it as the "
                             f"ANN: {str(err).splitlines()[-1]}; re-export it with an "
                             "opset and IR version this onnxruntime supports") from None
        self.input = self.session.get_inputs()[0]

    def check_fits(self, graph: Graph) -> None:
        """Refuse a model whose input or output does not match the compiled graph's."""
        expect = graph.inputs[0].type.shape[1:], graph.outputs[0].type.shape[1:]
        for what, value, shape in (("input", self.input, expect[0]),
                                   ("output", self.session.get_outputs()[0], expect[1])):
            dims = value.shape[1:]
            if len(dims) != len(shape) or any(isinstance(d, int) and d != s
                                               for d, s in zip(dims, shape, strict=False)):
                raise SnnccError(f"{self.path}: {what} '{value.name}' is "
                                 f"{list(value.shape)}, the compiled graph's is "
                                 f"[N, {', '.join(map(str, shape))}]; is this the model it "
                                 "was compiled from? (--onnx)")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if isinstance(self.input.shape[0], int) and self.input.shape[0] != len(batch):
            return np.concatenate([self(batch[i:i + 1]) for i in range(len(batch))])
        return np.asarray(self.session.run(None, {self.input.name: batch})[0], np.float32)

    def inference_seconds(self, batch: np.ndarray, repeats: int = 8) -> list[float]:
        """Wall times of `repeats` one-image inferences (after one warm-up run)."""
        self(batch[:1])
        times = []
        for i in range(repeats):
            start = time.perf_counter()
            self(batch[i % len(batch):i % len(batch) + 1])
            times.append(time.perf_counter() - start)
        return times


@dataclass(frozen=True)
class _Inputs:
    """Model-input batch (tiles or crops) and how each scored image is put back together:
    per image, its first tile's index in the batch and its tiling."""

    batch: np.ndarray
    labels: np.ndarray
    names: list[str]
    layout: list[tuple[int, Tiling]]

    def stitched(self, out: np.ndarray) -> list[np.ndarray]:
        """Per scored image, its output (C×H×W) put together from the batch's outputs."""
        return [tiling.stitch(out[start:start + len(tiling.origins)])
                for start, tiling in self.layout]


def _prepare(shape: tuple[int, ...], data: LabelledImages, settings: EvalSettings) -> _Inputs:
    _, channels, height, width = shape
    images, labels, names = data.images, data.labels, list(data.names)
    if images.shape[1] < height or images.shape[2] < width:
        raise SnnccError(f"images are {images.shape[2]}x{images.shape[1]}, smaller than the "
                         f"model input {width}x{height}")
    margin = settings.margin
    if settings.crops > 0:
        images, labels = random_crops(images, labels, settings.crops, height, width,
                                      settings.seed)
        names = [f"{n}#{k}" for n in data.names for k in range(settings.crops)]
        margin = 0
    pieces, layout = [], []
    for image in images:
        tiling = Tiling.plan(image.shape, (height, width), margin)
        layout.append((len(pieces), tiling))
        pieces.extend(tiling.cut(image))
    batch = np.repeat(np.stack(pieces)[:, None].astype(np.float32), channels, axis=1)
    return _Inputs(batch, labels, names, layout)


def _foreground(out: np.ndarray, inputs: _Inputs, head: Head
                ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Stitched foreground probability maps (N×H×W) and masks of a model-input output."""
    full = inputs.stitched(out)
    return np.stack([head.probability(f) for f in full]), [head.mask(f) for f in full]


def _with_population_outputs(graph: Graph) -> Graph:
    """A shallow copy of `graph` whose outputs also include every IF/LIF population (the
    simulator then returns each neuron's mean rate × amplitude)."""
    out = copy.copy(graph)
    out.outputs = [*graph.outputs, *(op.result for op in graph.ops if isinstance(op, Neurons))]
    return out


def _score(masks: list[np.ndarray], labels: np.ndarray) -> list[dict[str, float]]:
    return [segmentation_metrics(m, lab) for m, lab in zip(masks, labels, strict=True)]


def evaluate(graph: Graph, ann: OnnxModel, data: LabelledImages, settings: EvalSettings
             ) -> Evaluation:
    """Score the ANN and the SNN on `data`, and estimate energy per inference."""
    from snncc.sim.spiking import run_spiking

    ann.check_fits(graph)
    macs = onnx_macs(ann.path, {ann.input.name: graph.inputs[0].type.shape})
    inputs = _prepare(graph.inputs[0].type.shape, data, settings)
    channels = graph.outputs[0].type.shape[1]
    head = Head(output_head(graph), settings.threshold)
    head.check(channels)
    ann_maps, ann_masks = _foreground(ann(inputs.batch), inputs, head)
    cpu_runs = ann.inference_seconds(inputs.batch)
    ann_rows = _score(ann_masks, inputs.labels)
    steps = graph.attrs.timesteps if settings.timesteps is None else settings.timesteps
    populations = [op for op in graph.ops if isinstance(op, Neurons)]
    checkpoints = sorted({steps, *settings.sweep})
    run = run_spiking(_with_population_outputs(graph) if settings.neuron_rates else graph,
                      [inputs.batch], mode=settings.mode, timesteps=checkpoints[-1],
                      batch_size=settings.batch_size, progress=settings.progress,
                      frames=checkpoints)
    runs: dict[int, dict[str, Any]] = {}
    for t in checkpoints:
        outputs, stats = run.frames[t], run.frame_stats[t]
        maps, masks = _foreground(outputs[0], inputs, head)
        spikes = {k: v["spikes_per_image"] for k, v in stats["layers"].items()}
        runs[t] = {"maps": maps, "masks": masks, "rows": _score(masks, inputs.labels),
                   "stats": stats,
                   "energy": energy_report(graph, spikes, t, macs, cpu_runs,
                                           settings.constants)}
    if settings.neuron_rates:
        scale = 1.0 / graph.attrs.dt
        runs[steps]["rates"] = {
            op.result.name: out / op.attrs.amplitude * scale
            for op, out in zip(populations, run.frames[steps][1:], strict=True)}
    main = runs[steps]
    ann_mean = mean_metrics(ann_rows)
    rows = [{"image": name, "ann": a, "snn": s}
            for name, a, s in zip(inputs.names, ann_rows, main["rows"], strict=True)]
    agreement = np.mean([(a == s).mean() for a, s in zip(ann_masks, main["masks"], strict=True)])
    summary: dict[str, Any] = {
        "ann": ann_mean,
        "snn": mean_metrics(main["rows"]),
        "timesteps": steps,
        "dt": graph.attrs.dt,
        "mode": settings.mode,
        "mean_rate_hz": main["stats"]["mean_rate_hz"],
        "layer_rates_hz": {k: v["rate_hz"] for k, v in main["stats"]["layers"].items()},
        "ann_snn_agreement": float(agreement),
        "images": len(rows),
        "scored": "crops" if settings.crops else "whole images",
        "crops_per_image": settings.crops,
        "margin": inputs.layout[0][1].margin,
        "head": head.kind,
        "decision": head.describe(channels),
        "threshold": head.threshold,
        "inferences": len(inputs.batch),
        "energy": main["energy"],
        "per_image": rows,
    }
    if settings.sweep:
        summary["sweep"] = [_sweep_row(t, r, ann_mean) for t, r in sorted(runs.items())]
    return Evaluation(summary, _images(inputs), inputs.labels, ann_maps, main["maps"],
                      main.get("rates", {}))


def _sweep_row(steps: int, run: dict[str, Any], ann: dict[str, float]) -> dict[str, Any]:
    snn = mean_metrics(run["rows"])
    return {"timesteps": steps, "snn": snn,
            "gap_points": 100 * (ann["pixel_accuracy"] - snn["pixel_accuracy"]),
            "mean_rate_hz": run["stats"]["mean_rate_hz"],
            "loihi_j": run["energy"]["loihi"]["total"], "ratio": run["energy"]["ratio"],
            "synaptic_ops": run["energy"]["loihi_counts"]["synaptic_ops"]}


def _images(inputs: _Inputs) -> np.ndarray:
    """The scored images (first channel), stitched back from the model-input batch."""
    return np.stack([f[0] for f in inputs.stitched(inputs.batch)])
