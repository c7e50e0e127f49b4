"""The declaration a directly trained SNN carries in its ONNX file: "already spiking".

A network trained through its own spiking dynamics (`snncc.sim.differentiable`) is
exported as the ANN graph of its trained weights; its ONNX `metadata_props` entry
:data:`METADATA_KEY` (``snncc.spiking``) holds this JSON, which tells `snncc compile` to
skip rate scaling and take the trained thresholds instead (pass `trained-spiking`):

```json
{"format": "snncc-trained-spiking", "version": 1,
 "neuron": "if", "reset": "zero", "tau_s": 0.0, "v_min": -1.0,
 "dt": 0.001, "timesteps": 32, "weight_bits": 8,
 "input_threshold": 1.0, "readout_delay": 13,
 "layers": {"/enc1/act1/Relu": {"v_threshold": 1.0, "mean_rate": 0.12}},
 "training": {"surrogate": "fast-sigmoid", "epochs": 6}}
```

`layers` is keyed by ONNX Relu node name, like the rate statistics; `v_min` is a fraction
of each layer's threshold (≤ 0); `mean_rate` is the layer's measured spikes per step in
training; `training` is free-form provenance. Only the standard library and onnx are needed.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "snncc-trained-spiking"
VERSION = 1
METADATA_KEY = "snncc.spiking"
NEURONS = ("if",)
RESETS = ("zero",)


class TrainedSpikingError(ValueError):
    """The metadata entry exists but does not follow the schema."""


@dataclass(frozen=True)
class TrainedLayer:
    """One population as trained."""

    v_threshold: float
    mean_rate: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.v_threshold) and self.v_threshold > 0):
            raise TrainedSpikingError(f"v_threshold must be > 0, got {self.v_threshold}")
        if not 0 <= self.mean_rate <= 1:
            raise TrainedSpikingError(f"mean_rate must lie in [0, 1] spikes per step, got "
                                      f"{self.mean_rate}")


@dataclass(frozen=True)
class TrainedSpiking:
    """What a directly trained SNN declares about its neurons and how it was trained."""

    neuron: str
    reset: str
    tau_s: float
    v_min: float
    dt: float
    timesteps: int
    weight_bits: int
    input_threshold: float
    readout_delay: int
    layers: dict[str, TrainedLayer]
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.neuron not in NEURONS:
            problems.append(f"neuron {self.neuron!r} (supported: {', '.join(NEURONS)})")
        if self.reset not in RESETS:
            problems.append(f"reset {self.reset!r} (supported: {', '.join(RESETS)})")
        if self.tau_s != 0:
            problems.append(f"tau_s {self.tau_s} (only 0, no synaptic filter, is supported)")
        if not self.v_min <= 0:
            problems.append(f"v_min {self.v_min} (a fraction of the threshold, ≤ 0)")
        if not self.dt > 0 or self.timesteps < 1 or self.readout_delay < 0:
            problems.append(f"dt {self.dt}, timesteps {self.timesteps}, readout_delay "
                            f"{self.readout_delay} (need dt > 0, timesteps ≥ 1, delay ≥ 0)")
        if not 2 <= self.weight_bits <= 8:
            problems.append(f"weight_bits {self.weight_bits} (2…8)")
        if not self.input_threshold > 0:
            problems.append(f"input_threshold {self.input_threshold} (> 0)")
        if not self.layers:
            problems.append("no layers")
        if problems:
            raise TrainedSpikingError("unsupported " + "; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["layers"] = {name: asdict(layer) for name, layer in self.layers.items()}
        return {"format": FORMAT, "version": VERSION, **data}

    @classmethod
    def from_json(cls, data: Any) -> TrainedSpiking:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TrainedSpikingError(f"not a {FORMAT!r} object")
        if data.get("version") != VERSION:
            raise TrainedSpikingError(f"version {data.get('version')!r} is not {VERSION}")
        fields = {k: v for k, v in data.items() if k not in ("format", "version")}
        try:
            layers = {str(k): TrainedLayer(**v) for k, v in fields.pop("layers").items()}
            return cls(layers=layers, **fields)
        except (KeyError, TypeError, AttributeError) as err:
            raise TrainedSpikingError(f"missing or unknown field: {err}") from None


def read_onnx_trained(model: str | Path) -> TrainedSpiking | None:
    """The declaration in an ONNX file's metadata, or None when the model is an ANN."""
    from snncc.data.stats import metadata_entry

    text = metadata_entry(model, METADATA_KEY)
    if text is None:
        return None
    try:
        return TrainedSpiking.from_json(json.loads(text))
    except json.JSONDecodeError as err:
        raise TrainedSpikingError(f"metadata {METADATA_KEY!r} is not JSON: {err}") from None
