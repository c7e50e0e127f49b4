"""Export a trained PyTorch model to ONNX together with its activation-statistics file.

The stats file is keyed by the ONNX node names of the Relu nodes. The exported graph is read
back and each Relu node is matched to the ``nn.ReLU`` module it came from through the
module path the legacy exporter embeds in node names (``/enc1/act1/Relu`` <- ``enc1.act1``),
so that every ReLU module is one Relu node. The statistics themselves are measured on the
exported file (:func:`onnx_rate_stats`: onnxruntime, every Relu node's output), the same
way for a fresh export and for an ONNX model whose PyTorch module is gone (recomputing the
statistics of a shipped model on other calibration inputs leaves its graph untouched).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import Tensor, nn

from snncc.data.stats import LayerStats, RateStats, embed_onnx_stats
from snncc.training.torch_rate import to_plain_relu


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_with_stats` wrote and measured."""

    onnx_path: Path
    stats_path: Path
    node_to_module: dict[str, str]  # Relu node name -> torch module path, graph order
    stats: RateStats
    max_abs_diff: float  # onnxruntime vs torch, over the calibration inputs


def scope_to_module_path(node_name: str) -> str:
    """Module path encoded in a legacy-exporter node name.

    ``/enc1/act1/Relu`` -> ``enc1.act1``. Children of containers appear with their
    qualified name (``/layer1/layer1.0/relu/Relu`` -> ``layer1.0.relu``).
    """
    if not node_name.startswith("/"):
        return ""
    path = ""
    for segment in node_name.split("/")[1:-1]:
        if path and segment.startswith(path + "."):
            path = segment
        else:
            path = f"{path}.{segment}" if path else segment
    return path


def match_relu_nodes(graph: onnx.GraphProto, module_names: Sequence[str]) -> dict[str, str]:
    """Map every Relu node (graph order) to a ReLU module; the match must be one-to-one.

    Raises ``ValueError`` naming the unmatched nodes/modules otherwise (e.g. a functional
    ``F.relu``, or one module reused at two places in ``forward``).
    """
    known = set(module_names)
    mapping: dict[str, str] = {}
    unmatched_nodes: list[str] = []
    for node in graph.node:
        if node.op_type != "Relu":
            continue
        path = scope_to_module_path(node.name)
        if path in known:
            mapping[node.name] = path
        else:
            unmatched_nodes.append(node.name)
    used = list(mapping.values())
    reused = sorted({p for p in used if used.count(p) > 1})
    unused = [m for m in module_names if m not in set(used)]
    if unmatched_nodes or reused or unused:
        raise ValueError(
            "Relu nodes and ReLU modules do not match one-to-one: "
            f"unmatched nodes {unmatched_nodes}, modules used twice {reused}, "
            f"modules without node {unused}"
        )
    return mapping


@torch.no_grad()
def _outputs(model: nn.Module, inputs: Tensor, batch_size: int) -> np.ndarray:
    """Run ``model`` over ``inputs`` in batches; its outputs, concatenated."""
    return np.concatenate([model(inputs[start : start + batch_size]).numpy()
                           for start in range(0, len(inputs), batch_size)])


def onnx_rate_stats(
    onnx_path: str | Path,
    calibration: np.ndarray,
    *,
    percentile: float = 99.9,
    rate_scale_hz: float = 250.0,
    dt: float = 0.001,
) -> tuple[RateStats, np.ndarray]:
    """Activation statistics of every Relu node of an ONNX model over ``calibration``.

    onnxruntime runs the file one input at a time (N×C×H×W; graphs exported here have a
    batch of 1) with every Relu node's output added as a graph output; each node gets
    :meth:`LayerStats.from_values` of all its values. The file is not modified. Returns the
    statistics (layers in graph order) and the model's first output for every input.
    """
    proto = onnx.load(str(onnx_path))
    relus = [node for node in proto.graph.node if node.op_type == "Relu"]
    if not relus:
        raise ValueError(f"{onnx_path}: the model has no Relu node")
    unnamed = [node.output[0] for node in relus if not node.name]
    if unnamed:
        raise ValueError(f"{onnx_path}: Relu node(s) without a name (outputs {unnamed}); "
                         "statistics are keyed by node name")
    outputs_before = [o.name for o in proto.graph.output]
    proto.graph.output.extend(
        onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)
        for node in relus if node.output[0] not in outputs_before)
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    fetch = [outputs_before[0], *(node.output[0] for node in relus)]
    calibration = np.asarray(calibration, dtype=np.float32)
    outputs: list[np.ndarray] = []
    acts: list[np.ndarray] = []
    for i, x in enumerate(calibration):
        out, *values = session.run(fetch, {input_name: x[None]})
        if i == 0:
            acts = [np.empty((len(calibration), *v.shape), np.float32) for v in values]
        for store, value in zip(acts, values, strict=True):
            store[i] = value
        outputs.append(out)
    stats = RateStats(
        dt=dt,
        percentile=percentile,
        rate_scale_hz=rate_scale_hz,
        layers={node.name: LayerStats.from_values(a, percentile)
                for node, a in zip(relus, acts, strict=True)},
    )
    return stats, np.concatenate(outputs)


def export_with_stats(
    model: nn.Module,
    calibration: Tensor,
    onnx_path: str | Path,
    stats_path: str | Path,
    *,
    percentile: float = 99.9,
    rate_scale_hz: float = 250.0,
    dt: float = 0.001,
    input_name: str = "image",
    output_name: str = "prob",
    opset: int = 13,
    batch_size: int = 32,
) -> ExportResult:
    """Export ``model`` with plain ReLUs to ONNX (input shape ``calibration[:1]``), check it,
    and write per-Relu-node activation statistics measured on ``calibration``: to
    ``stats_path`` and into the ONNX file's metadata (``snncc.data.stats.METADATA_KEY``),
    so that ``snncc compile MODEL.onnx`` needs no other file.

    ``model`` itself is left untouched: a copy has every activation (including
    :class:`~snncc.training.torch_rate.LoihiRateReLU`) replaced by ``nn.ReLU``, because the
    compiler models Loihi's rate curve itself. Statistics are of activation values, not Hz.
    """
    onnx_path, stats_path = Path(onnx_path), Path(stats_path)
    plain = copy.deepcopy(model).eval()
    to_plain_relu(plain)
    calibration = calibration.detach().float().cpu()
    torch.onnx.export(
        plain,
        (calibration[:1],),
        str(onnx_path),
        opset_version=opset,
        dynamo=False,
        input_names=[input_name],
        output_names=[output_name],
    )
    onnx.checker.check_model(str(onnx_path))
    graph = onnx.load(str(onnx_path)).graph
    module_names = [name for name, m in plain.named_modules() if isinstance(m, nn.ReLU)]
    node_to_module = match_relu_nodes(graph, module_names)

    stats, ort_out = onnx_rate_stats(onnx_path, calibration.numpy(), percentile=percentile,
                                     rate_scale_hz=rate_scale_hz, dt=dt)
    stats.save(stats_path)
    embed_onnx_stats(onnx_path, stats)
    torch_out = _outputs(plain, calibration, batch_size)
    return ExportResult(
        onnx_path=onnx_path,
        stats_path=stats_path,
        node_to_module=node_to_module,
        stats=stats,
        max_abs_diff=float(np.max(np.abs(ort_out - torch_out))),
    )
