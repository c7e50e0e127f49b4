"""The calibration images a data-driven pass runs on, or the record that it could not."""

from __future__ import annotations

import numpy as np

from snncc.ir.graph import Graph
from snncc.pipeline.pass_base import PassContext


def calibration_images(graph: Graph, ctx: PassContext, pass_name: str,
                       unchanged: str) -> np.ndarray | None:
    """The context's calibration images, checked against the graph's input; None (recorded
    in the report and said on the log: `unchanged` names what stays as converted) when
    there are none, so the pass changes nothing."""
    from snncc.data.images import check_calibration

    if ctx.calibration is None:
        ctx.record(pass_name, skipped="no calibration images (--calibration)")
        print(f"{pass_name}: no calibration images (--calibration): {unchanged} left as "
              "converted", file=ctx.log)
        return None
    return check_calibration(ctx.calibration, graph.inputs[0].type, pass_name)
