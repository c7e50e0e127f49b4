"""What the ONNX frontend tells the user: file errors, the table of refused nodes, advice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from snncc.diagnostics import SnnccError

if TYPE_CHECKING:
    from snncc.ir.graph import Graph


class OnnxImportError(SnnccError):
    """The file cannot be read as a usable ONNX model (the message names the file)."""


class OnnxImportWarning(UserWarning):
    """An import that succeeded with an approximation the user asked for (maxpool='avg')."""


class Unsupported(Exception):
    """Raised by a lowering: this node cannot be compiled. Collected into one table."""

    def __init__(self, why: str, todo: str | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.todo = todo


@dataclass(frozen=True)
class Refusal:
    """One row of the table: a node, why it cannot be compiled, what the user can do."""

    node: str
    op_type: str
    why: str
    todo: str


class UnsupportedModelError(SnnccError):
    """The model holds nodes snncc cannot compile; the message lists every one of them.
    `graph` is what the import built, refused nodes as `onnx.<OpType>` placeholder ops."""

    def __init__(self, file: str, refusals: list[Refusal], graph: Graph | None = None) -> None:
        self.file = file
        self.refusals = refusals
        self.graph = graph
        count = f"{len(refusals)} node{'s' if len(refusals) != 1 else ''}"
        super().__init__(f"{file}: {count} cannot be compiled to a spiking network:\n"
                         + format_table(refusals))


def format_table(refusals: list[Refusal]) -> str:
    rows = [("node", "op type", "why", "what to do")]
    rows += [(r.node, r.op_type, r.why, r.todo) for r in refusals]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True))
             + "  " + row[3] for row in rows]
    lines.insert(1, "  " + "  ".join("-" * w for w in widths) + "  " + "-" * 10)
    return "\n".join(line.rstrip() for line in lines)


MAXPOOL_TYPES = frozenset({"MaxPool", "GlobalMaxPool"})

_RATE = ("no exact spiking form: a spiking neuron's firing rate is a ReLU of its input",
         "replace it by Relu and retrain (or fine-tune) the network")
_NORM = ("normalizes with statistics computed from each input at run time",
         "use BatchNormalization (folded into the convolution) or no normalization")
_ADVICE: dict[str, tuple[str, str]] = {
    **dict.fromkeys(
        ["LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu", "Tanh", "HardSigmoid",
         "HardSwish", "Softplus", "Softsign", "Mish", "Swish", "ThresholdedRelu", "Clip",
         "Erf", "Exp", "Log", "Sqrt", "Pow", "Abs", "Neg"], _RATE),
    **dict.fromkeys(["InstanceNormalization", "LayerNormalization", "GroupNormalization",
                     "LpNormalization", "MeanVarianceNormalization", "LRN"], _NORM),
    **dict.fromkeys(sorted(MAXPOOL_TYPES), (
        "a spiking network has no exact max: it carries firing rates, which pool by averaging",
        "pass maxpool='avg' (CLI --maxpool=avg) to compile it as average pooling, ideally "
        "after retraining with AvgPool")),
    "Pad": ("explicit padding ops are not supported",
            "put the padding into the convolution (Conv2d(padding=...))"),
}
_DEFAULT = ("snncc's ONNX frontend has no lowering for this op type",
            "replace it with supported ops (docs/frontend.md lists them)")


def advice(op_type: str) -> tuple[str, str]:
    """(why, what to do) for an op type snncc does not lower."""
    return _ADVICE.get(op_type, _DEFAULT)
