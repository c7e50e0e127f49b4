"""Per-layer activation statistics file read by the ``scale-rates`` pass.

The file ties measured activation statistics to ONNX Relu node names, so the compiler can
choose each layer's firing-rate scale without re-running the network. This module only
needs the standard library and NumPy (and onnx to read or write a model's metadata): the
compiler reads the file without PyTorch.

The same JSON text travels inside the ONNX file itself, as the value of the model's
`metadata_props` entry :data:`METADATA_KEY` (``snncc.rate-stats``), so a model exported by
`snncc.training` compiles with no other file; its ``format`` and ``version`` fields version
it as they version the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "snncc-rate-stats"
VERSION = 1
MAX_ACTIVATION = 1e15  # far above any trained ReLU; larger values are corrupt files
METADATA_KEY = "snncc.rate-stats"  # ONNX metadata_props key holding the stats JSON
SIDECAR_SUFFIX = ".stats.json"  # MODEL.onnx -> MODEL.stats.json beside it


class RateStatsError(ValueError):
    """Raised when a stats file does not follow the ``snncc-rate-stats`` schema."""


@dataclass(frozen=True)
class LayerStats:
    """Statistics of one Relu's output activations (activation units, not Hz)."""

    percentile_activation: float
    max_activation: float
    mean_activation: float
    samples: int

    def __post_init__(self) -> None:
        for key in ("percentile_activation", "max_activation", "mean_activation"):
            value = getattr(self, key)
            if not (math.isfinite(value) and 0 <= value <= MAX_ACTIVATION):
                raise RateStatsError(f"{key} must be a finite activation in [0, "
                                     f"{MAX_ACTIVATION:g}] (ReLU outputs), got {value}")
        if self.samples < 0:
            raise RateStatsError(f"samples must be ≥ 0, got {self.samples}")

    @classmethod
    def from_values(cls, values: np.ndarray, percentile: float) -> LayerStats:
        """Summarise all activation values of one layer (any shape, flattened)."""
        flat = np.asarray(values, dtype=np.float64).ravel()
        if flat.size == 0:
            raise RateStatsError("cannot summarise an empty activation array")
        return cls(
            percentile_activation=float(np.percentile(flat, percentile)),
            max_activation=float(flat.max()),
            mean_activation=float(flat.mean()),
            samples=int(flat.size),
        )


@dataclass(frozen=True)
class RateStats:
    """Contents of a stats file: run settings plus :class:`LayerStats` per Relu node.

    ``rate_scale_hz`` is the fixed factor that turned activations into firing rates during
    training (rate = activation * rate_scale_hz); ``percentile`` is q in [0, 100].
    """

    dt: float
    percentile: float
    rate_scale_hz: float
    layers: dict[str, LayerStats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (self.dt > 0 and math.isfinite(self.dt)):
            raise RateStatsError(f"dt must be positive, got {self.dt}")
        if not 0.0 <= self.percentile <= 100.0:
            raise RateStatsError(f"percentile must be in [0, 100], got {self.percentile}")
        if not (self.rate_scale_hz > 0 and math.isfinite(self.rate_scale_hz)):
            raise RateStatsError(f"rate_scale_hz must be positive, got {self.rate_scale_hz}")

    def percentile_rates_hz(self) -> dict[str, float]:
        """The q-th percentile firing rate of each layer under ``rate_scale_hz``."""
        return {
            name: s.percentile_activation * self.rate_scale_hz for name, s in self.layers.items()
        }

    def to_json(self) -> dict[str, object]:
        """The JSON object written to disk (key order as in the documented schema)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "dt": self.dt,
            "percentile": self.percentile,
            "rate_scale_hz": self.rate_scale_hz,
            "layers": {name: asdict(s) for name, s in self.layers.items()},
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> RateStats:
        """Validate and parse the JSON object of a stats file."""
        if not isinstance(obj, Mapping):
            raise RateStatsError(f"expected a JSON object, found {type(obj).__name__}")
        if obj.get("format") != FORMAT:
            raise RateStatsError(f"format must be {FORMAT!r}, got {obj.get('format')!r}")
        if obj.get("version") != VERSION:
            raise RateStatsError(f"unsupported version {obj.get('version')!r}")
        layers_obj = obj.get("layers")
        if not isinstance(layers_obj, Mapping):
            raise RateStatsError("'layers' must be an object keyed by ONNX node name")
        layers: dict[str, LayerStats] = {}
        for name, entry in layers_obj.items():
            if not isinstance(entry, Mapping):
                raise RateStatsError(f"layer {name!r}: entry must be an object")
            try:
                layers[name] = LayerStats(
                    percentile_activation=float(entry["percentile_activation"]),
                    max_activation=float(entry["max_activation"]),
                    mean_activation=float(entry["mean_activation"]),
                    samples=int(entry["samples"]),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise RateStatsError(f"layer {name!r}: {exc}") from exc
        try:
            return cls(
                dt=float(obj["dt"]),  # type: ignore[arg-type]
                percentile=float(obj["percentile"]),  # type: ignore[arg-type]
                rate_scale_hz=float(obj["rate_scale_hz"]),  # type: ignore[arg-type]
                layers=layers,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RateStatsError(f"bad header field: {exc}") from exc

    def save(self, path: str | Path) -> None:
        """Write the stats file (UTF-8 JSON, indented for review in diffs)."""
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> RateStats:
        """Read and validate a stats file."""
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def sidecar_path(model: str | Path) -> Path:
    """Where a model's stats file lies when it travels beside it: ``NAME.stats.json``."""
    model = Path(model)
    return model.with_name(model.stem + SIDECAR_SUFFIX)


def metadata_entry(model: str | Path, key: str) -> str | None:
    """The value of an ONNX file's `metadata_props` entry `key` (None when absent), read
    without loading external weight data."""
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    return next((p.value for p in proto.metadata_props if p.key == key), None)


def read_onnx_stats(model: str | Path) -> RateStats | None:
    """The statistics embedded in an ONNX file's metadata, or None when it has none.

    Raises :class:`RateStatsError` when the entry exists but is not a valid stats object.
    """

    text = metadata_entry(model, METADATA_KEY)
    if text is None:
        return None
    try:
        return RateStats.from_json(json.loads(text))
    except json.JSONDecodeError as exc:
        raise RateStatsError(f"metadata {METADATA_KEY!r} is not JSON: {exc}") from None


def embed_onnx_stats(model: str | Path, stats: RateStats, out: str | Path | None = None) -> Path:
    """Write ``model`` (to ``out``, default in place) with ``stats`` in its metadata.

    Only the :data:`METADATA_KEY` entry changes (added or replaced); graph and weights are
    written back as they were read.
    """
    import onnx

    proto = onnx.load(str(model))
    props = {p.key: p.value for p in proto.metadata_props}
    props[METADATA_KEY] = json.dumps(stats.to_json(), separators=(",", ":"))
    onnx.helper.set_model_props(proto, props)  # replaces all entries, in this order
    target = Path(out) if out is not None else Path(model)
    onnx.save(proto, str(target))
    return target
