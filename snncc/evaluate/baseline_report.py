"""Loihi's energy estimate against measured baselines (files `snncc baseline` wrote): per
crop and per slice, online (batch 1) and batched, board and dynamic energy.

Loihi runs one input at a time, so its energy per crop is the same online and batched; its
time per crop is T × `loihi_step_s`. A slice costs Loihi one inference per tile of the
overlap-tiling `snncc run` uses (256 for a 512×512 slice in 64×64 tiles at the default
margin of 16 pixels, 64 without overlap); the ANN runs the whole slice in one pass
(`slice_online`) or, batched, as tiles × its batched energy per crop.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path
from typing import Any

from snncc.data.images import Tiling
from snncc.diagnostics import SnnccError

FORMAT = "snncc-baseline/1"
SPREAD = ("median", "min", "max")


def _check_spread(path: Path, where: str, value: Any, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, dict) or any(
            isinstance(value.get(k), bool) or not isinstance(value.get(k), (int, float))
            or not math.isfinite(value[k]) for k in SPREAD):
        raise SnnccError(f"{path}: {where} must be an object of finite numbers "
                         f"{', '.join(SPREAD)}")


def load_baseline(path: Path) -> dict[str, Any]:
    """A baseline file, checked: its format, device, method and every workload's numbers."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SnnccError(f"{path}: cannot read the baseline file: {err}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SnnccError(f"{path}: not an snncc baseline file (\"format\": \"{FORMAT}\"); "
                         "write one with `snncc baseline MODEL.onnx`")
    for key, kind in (("device", dict), ("method", str), ("measured", bool), ("model", dict),
                      ("workloads", dict)):
        if not isinstance(data.get(key), kind):
            raise SnnccError(f"{path}: \"{key}\" is missing or not a {kind.__name__}")
    if "crop_online" not in data["workloads"]:
        raise SnnccError(f"{path}: has no \"crop_online\" workload")
    for name, w in data["workloads"].items():
        if not isinstance(w, dict) or not isinstance(w.get("input_shape"), list):
            raise SnnccError(f"{path}: workload \"{name}\" has no input_shape")
        for key in ("seconds_per_image", "board_j_per_image", "dynamic_j_per_image"):
            _check_spread(path, f"workloads.{name}.{key}", w.get(key),
                          optional=key == "dynamic_j_per_image")
    return data


def model_sha256(model: Path) -> str:
    """sha256 of the ONNX graph (its nodes and weights: what a baseline measured), so that
    metadata such as the rate statistics written into the file do not change it."""
    from snncc.frontend.onnx.loader import read_model

    graph = read_model(model).graph
    return hashlib.sha256(graph.SerializeToString(deterministic=True)).hexdigest()


def resolve_baselines(given: list[Path], model: Path | None, crop_shape: tuple[int, ...]
                      ) -> list[tuple[Path, dict[str, Any]]]:
    """The baselines to report: the files given (`--baseline`), else those in `baselines/`
    beside the model that were measured on it (same sha256). A given file measured on
    another model file is used with a warning; a default one is skipped with one. Each
    must have been measured on inputs of the graph's `crop_shape`."""
    sha = model_sha256(model) if model is not None and model.is_file() else None
    explicit = bool(given)
    if not explicit and model is not None:
        given = sorted((model.parent / "baselines").glob("*.json"))
    chosen = []
    for path in given:
        data = load_baseline(path)
        if sha is not None and data["model"].get("sha256") != sha:
            warnings.warn(f"{path} was measured on another model file than {model} "
                          f"(sha256 differs){'' if explicit else '; not used'}", stacklevel=2)
            if not explicit:
                continue
        check_inputs(path, data, crop_shape)
        chosen.append((path, data))
    return chosen


def check_inputs(path: Path, data: dict[str, Any], crop_shape: tuple[int, ...]) -> None:
    """Refuse a baseline measured on other inputs than the compiled graph takes."""
    measured_on = data["workloads"]["crop_online"]["input_shape"][1:]
    if list(measured_on) != list(crop_shape[1:]):
        raise SnnccError(f"{path}: measured on inputs of shape {measured_on}, the compiled "
                         f"graph takes {list(crop_shape[1:])}; measure this model")


def _row(ann: dict[str, Any], tiles: int, loihi_j: float, loihi_s: float) -> dict[str, Any]:
    """ANN (one workload's medians × `tiles`) against Loihi; ratios are ANN ÷ Loihi."""
    board, dynamic = ann["board_j_per_image"], ann["dynamic_j_per_image"]

    def ratio(values: dict[str, float] | None) -> tuple[float | None, list[float] | None]:
        if values is None or loihi_j <= 0:
            return None, None
        return (values["median"] * tiles / loihi_j,
                [values["min"] * tiles / loihi_j, values["max"] * tiles / loihi_j])

    board_ratio, board_range = ratio(board)
    dynamic_ratio, dynamic_range = ratio(dynamic)
    return {"batch": ann["input_shape"][0],
            "ann_seconds": ann["seconds_per_image"]["median"] * tiles,
            "ann_board_j": board["median"] * tiles,
            "ann_dynamic_j": None if dynamic is None else dynamic["median"] * tiles,
            "loihi_j": loihi_j, "loihi_seconds": loihi_s,
            "board_ratio": board_ratio, "board_ratio_range": board_range,
            "dynamic_ratio": dynamic_ratio, "dynamic_ratio_range": dynamic_range}


def compare_baselines(energy: dict[str, Any], crop_shape: tuple[int, ...],
                      baselines: list[tuple[Path, dict[str, Any]]], margin: int | None = None
                      ) -> list[dict[str, Any]]:
    """Loihi's energy per inference (an `energy_report`) against each baseline; a slice
    costs Loihi one inference per tile of the overlap-tiling with `margin` (None: the
    default, as `snncc run` segments a slice)."""
    loihi_j = energy["loihi"]["total"]
    loihi_s = energy["timesteps"] * energy["constants"]["loihi_step_s"]
    rows = []
    for path, data in baselines:
        work = data["workloads"]
        check_inputs(path, data, crop_shape)
        per_crop = {"online": _row(work["crop_online"], 1, loihi_j, loihi_s)}
        if "crop_batched" in work:
            per_crop["batched"] = _row(work["crop_batched"], 1, loihi_j, loihi_s)
        row = {"file": str(path), "device": data["device"].get("name"),
               "kind": data["device"].get("kind"), "method": data["method"],
               "measured": data["measured"], "date": data.get("date"), "per_crop": per_crop}
        if "slice_online" in work:
            height, width = work["slice_online"]["input_shape"][-2:]
            tiling = Tiling.plan((height, width), tuple(crop_shape[-2:]), margin)
            tiles = len(tiling.origins)
            per_slice = {"slice": [height, width], "margin": tiling.margin, "tiles": tiles,
                         "online": _row(work["slice_online"], 1, loihi_j * tiles,
                                        loihi_s * tiles)}
            if "crop_batched" in work:
                per_slice["batched"] = {
                    **_row(work["crop_batched"], tiles, loihi_j * tiles, loihi_s * tiles),
                    "ann_from": f"crop_batched × {tiles} tiles"}
            row["per_slice"] = per_slice
        rows.append(row)
    return rows


def _mj(joules: float | None) -> str:
    if joules is None:
        return "n/a"
    return f"{joules:.3g} J" if joules >= 1 else f"{joules * 1e3:.3g} mJ"


def _vs(row: dict[str, Any], measured: bool) -> str:
    text = f"ANN {_mj(row['ann_board_j'])}" + (" board" if measured else "")
    if row["ann_dynamic_j"] is not None:
        text += f", {_mj(row['ann_dynamic_j'])} dynamic"
    text += f" → ANN/Loihi {row['board_ratio']:.2g}×"
    if row["dynamic_ratio"] is not None:
        text += f" board, {row['dynamic_ratio']:.2g}× dynamic"
    return text


def baseline_lines(energy: dict[str, Any]) -> list[str]:
    """A few lines per baseline for a person: per crop online and batched, per slice."""
    lines = []
    for b in energy.get("baselines", []):
        how = "energy counter" if b["measured"] else "no energy counter: time × stated power"
        crop = b["per_crop"]
        text = f"  vs {b['device']} ({how}), per crop: online {_vs(crop['online'], b['measured'])}"
        if "batched" in crop:
            text += f"; batched ({crop['batched']['batch']}) {_vs(crop['batched'], b['measured'])}"
        lines.append(text)
        if "per_slice" in b:
            s = b["per_slice"]
            online = s["online"]
            lines.append(f"    per {s['slice'][0]}×{s['slice'][1]} slice ({s['tiles']} tiles on "
                         f"Loihi, overlap margin {s['margin']}): Loihi {_mj(online['loihi_j'])} in "
                         f"{online['loihi_seconds']:.2g} s; ANN online "
                         f"{online['ann_seconds'] * 1e3:.3g} ms, {_vs(online, b['measured'])}")
    return lines


def with_baselines(energy: dict[str, Any] | None, crop_shape: tuple[int, ...],
                   baselines: list[tuple[Path, dict[str, Any]]], margin: int | None = None
                   ) -> dict[str, Any] | None:
    """`energy` (an energy report, or None) with `baselines` compared under "baselines"."""
    if energy is not None:
        energy["baselines"] = compare_baselines(energy, crop_shape, baselines, margin)
    return energy
