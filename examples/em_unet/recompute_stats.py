"""Recompute a model's rate statistics on the training crops; graph and weights unchanged.

Until 2026-11-27, ``train.py`` exported statistics measured on the *validation* crops
(slices 20-24), the crops every SNN accuracy is scored on: the SNN's firing-rate scales
were fitted on its test data. ``train.py`` now measures them on
``data.calibration_crops()`` (the 1280 grid crops of training slices 0-19); this script
does the same for a model already trained, from its ONNX file alone::

    python examples/em_unet/recompute_stats.py examples/em_unet/unet.onnx

It measures every Relu node's activations with onnxruntime
(``snncc.training.export.onnx_rate_stats``, what the training export uses), keeps the
percentile, ``rate_scale_hz`` and ``dt`` of the statistics the model carries (embedded, or
``MODEL.stats.json`` beside it; the defaults 99.9, 250 Hz, 1 ms without either), writes
``MODEL.stats.json`` and the ONNX metadata entry ``snncc.rate-stats`` (only that entry
changes), and records what it did under ``rate_stats`` in the ``training_log.json`` beside
the model, if there is one.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
from pathlib import Path

import onnx
from data import DATA_DIR, TRAIN_SLICES, calibration_crops

from snncc.data.stats import RateStats, embed_onnx_stats, read_onnx_stats, sidecar_path
from snncc.training.export import onnx_rate_stats

CALIBRATION = (f"all non-overlapping 64x64 grid crops of the training slices "
               f"{TRAIN_SLICES[0]}-{TRAIN_SLICES[-1]} (data.calibration_crops)")


def graph_bytes(path: Path) -> bytes:
    """The model without its metadata: what must not change."""
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    return proto.SerializeToString()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="the ONNX model, its metadata rewritten in place")
    p.add_argument("--data", type=Path, default=DATA_DIR, help="the labelled EM slices")
    args = p.parse_args(argv)
    old = read_onnx_stats(args.model)
    sidecar = sidecar_path(args.model)
    if old is None and sidecar.is_file():
        old = RateStats.load(sidecar)
    settings = ({"percentile": old.percentile, "rate_scale_hz": old.rate_scale_hz,
                 "dt": old.dt} if old is not None else {})
    before = graph_bytes(args.model)
    crops = calibration_crops(args.data)
    stats, _ = onnx_rate_stats(args.model, crops, **settings)
    if old is not None and set(old.layers) != set(stats.layers):
        sys.exit(f"{args.model}: its Relu nodes differ from those of its statistics")
    stats.save(sidecar)
    embed_onnx_stats(args.model, stats)
    assert read_onnx_stats(args.model) == stats and graph_bytes(args.model) == before
    rates = stats.percentile_rates_hz()
    print(f"{args.model}: p{stats.percentile:g} rates on {len(crops)} training crops, Hz:")
    for name, rate in rates.items():
        was = f" (was {old.percentile_rates_hz()[name]:.1f})" if old is not None else ""
        print(f"  {name:22s} {rate:7.1f}{was}")
    print(f"wrote {sidecar} and the metadata of {args.model}")
    log_path = args.model.parent / "training_log.json"
    if log_path.is_file():
        log = json.loads(log_path.read_text(encoding="utf-8"))
        log["rate_stats"] = {
            "calibration": CALIBRATION,
            "crops": len(crops),
            "percentile_rates_hz": rates,
            "recomputed_after_training": {
                "command": shlex.join(["python", *sys.argv]),
                "date": datetime.date.today().isoformat(),
                "why": "training exported statistics of the validation crops (slices 20-24, "
                       "final.val_crops), on which the SNN is scored; recomputed on training "
                       "crops with the same weights (graph unchanged, only the stats file and "
                       "the ONNX metadata). final.percentile_rates_hz stays the validation "
                       "crops' measurement.",
            },
        }
        log_path.write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
        print(f"recorded in {log_path} under 'rate_stats'")


if __name__ == "__main__":
    main()
