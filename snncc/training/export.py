"""Export a trained PyTorch model to ONNX together with its activation-statistics file.

The stats file is keyed by the ONNX node names of the Relu nodes, so the exported graph is
read back and each Relu node is matched to the ``nn.ReLU`` module it came from through the
module path the legacy exporter embeds in node names (``/enc1/act1/Relu`` <- ``enc1.act1``).
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
from snncc.training.torch_rate import ActivationCapture, to_plain_relu


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
def _activations_and_outputs(
    model: nn.Module, inputs: Tensor, batch_size: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Run ``model`` over ``inputs``; return all ReLU outputs by module and the outputs."""
    collected: dict[str, list[np.ndarray]] = {}
    outputs: list[np.ndarray] = []
    with ActivationCapture(model) as capture:
        for start in range(0, len(inputs), batch_size):
            outputs.append(model(inputs[start : start + batch_size]).numpy())
            for name, act in zip(capture.names, capture.latest(), strict=True):
                collected.setdefault(name, []).append(act.numpy())
    acts = {name: np.concatenate(chunks) for name, chunks in collected.items()}
    return acts, np.concatenate(outputs)


def onnxruntime_outputs(onnx_path: Path, inputs: np.ndarray, input_name: str) -> np.ndarray:
    """Run the ONNX file on each input separately (the graph has a fixed batch of 1)."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {input_name: x[None]})[0] for x in inputs])


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

    acts, torch_out = _activations_and_outputs(plain, calibration, batch_size)
    stats = RateStats(
        dt=dt,
        percentile=percentile,
        rate_scale_hz=rate_scale_hz,
        layers={
            node: LayerStats.from_values(acts[module], percentile)
            for node, module in node_to_module.items()
        },
    )
    stats.save(stats_path)
    embed_onnx_stats(onnx_path, stats)
    ort_out = onnxruntime_outputs(onnx_path, calibration.numpy(), input_name)
    return ExportResult(
        onnx_path=onnx_path,
        stats_path=stats_path,
        node_to_module=node_to_module,
        stats=stats,
        max_abs_diff=float(np.max(np.abs(ort_out - torch_out))),
    )
