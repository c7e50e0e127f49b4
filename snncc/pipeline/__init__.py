"""Pass infrastructure: the pass contract, pipeline strings, the pass manager."""

from snncc.pipeline.manager import (
    PassFailed,
    PassManager,
    check_pipeline,
    parse_pipeline,
    with_options,
)
from snncc.pipeline.options import PipelineError, format_spec, parse_specs
from snncc.pipeline.pass_base import Pass, PassContext, PassResult

__all__ = [
    "Pass",
    "PassContext",
    "PassFailed",
    "PassManager",
    "PassResult",
    "PipelineError",
    "check_pipeline",
    "format_spec",
    "parse_pipeline",
    "parse_specs",
    "with_options",
]
