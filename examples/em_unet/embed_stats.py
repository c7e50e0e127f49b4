"""Write a stats file into its ONNX model's metadata, as `snncc.training`'s export does.

For models exported before the export embedded its statistics (the shipped ``unet.onnx``
was made so with ``unet.stats.json``)::

    cd examples/em_unet && python embed_stats.py unet.onnx unet.stats.json

Only the metadata entry ``snncc.rate-stats`` changes; graph, weights and the statistics'
numbers stay as they were (the JSON is the stats file's, re-serialized compactly).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from snncc.data.stats import METADATA_KEY, RateStats, embed_onnx_stats, read_onnx_stats


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="the ONNX model, rewritten in place")
    p.add_argument("stats", type=Path, help="its rate statistics file (snncc-rate-stats)")
    args = p.parse_args(argv)
    stats = RateStats.load(args.stats)
    embed_onnx_stats(args.model, stats)
    assert read_onnx_stats(args.model) == stats
    print(f"{args.model}: metadata '{METADATA_KEY}' holds the {len(stats.layers)} layers of "
          f"{args.stats}")


if __name__ == "__main__":
    main()
