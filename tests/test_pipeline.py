"""Pipeline strings, option binding, static checks, the pass manager's instrumentation."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import pytest
from irbuild import tiny_unet
from loihi_graphs import spiking_unet

from snncc.diagnostics import SnnccError
from snncc.ir import Graph
from snncc.ir.properties import TILED, Property
from snncc.pipeline import (
    Pass,
    PassContext,
    PassFailed,
    PassManager,
    PipelineError,
    format_spec,
    parse_pipeline,
    parse_specs,
    with_options,
)
from snncc.pipeline.registry import PASSES

TUNED = Property("tuned", "a property only the tests establish")


@dataclass(frozen=True)
class Tune(Pass):
    name = "test-tune"
    summary = "a pass with typed options, for the tests"
    establishes = frozenset({TUNED})
    percentile: float = 99.9
    bits: int = 8
    mode: Literal["fast", "exact"] = "exact"
    label: str = "x"
    flag: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 8:
            raise ValueError(f"bits must be in 1..8, got {self.bits}")

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        return False


@dataclass(frozen=True)
class NeedsTuned(Pass):
    name = "test-needs-tuned"
    summary = "requires 'tuned'"
    requires = frozenset({TUNED})

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        return False


@dataclass(frozen=True)
class Explode(Pass):
    name = "test-explode"
    summary = "fails with a user error"

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        raise SnnccError("layer 'c1' is broken")


@dataclass(frozen=True)
class Corrupt(Pass):
    name = "test-corrupt"
    summary = "leaves an invalid graph"

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        graph.ops.reverse()
        return True


@dataclass(frozen=True)
class FalseClaim(Pass):
    name = "test-false-claim"
    summary = "claims to tile the graph but does nothing"
    establishes = frozenset({TILED})

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        return False


TEST_PASSES = (Tune, NeedsTuned, Explode, Corrupt, FalseClaim)


@pytest.fixture(autouse=True)
def test_passes():
    for cls in TEST_PASSES:
        PASSES.add(cls, source="tests/test_pipeline.py")
    yield
    for cls in TEST_PASSES:
        PASSES.remove(cls.name)


def test_specs_and_typed_binding():
    specs = parse_specs('a, b{x=1 y-z="two words"},c{}')
    assert [s.name for s in specs] == ["a", "b", "c"]
    assert specs[1].options["y_z"][0] == '"two words"'
    (p,) = parse_pipeline("test-tune{percentile=99 bits=4 mode=fast label=\"a b\" flag=true}")
    assert p == Tune(percentile=99.0, bits=4, mode="fast", label="a b", flag=True)
    assert format_spec(p) == 'test-tune{percentile=99.0 bits=4 mode=fast label="a b" flag=true}'
    assert parse_pipeline(format_spec(p)) == [p]


def test_with_options_sets_one_pass_and_keeps_the_rest_as_written():
    text = "canonicalize, test-tune{bits=4  mode=fast},fuse-linear"
    changed = with_options(text, "test-tune", percentile=99.5)
    assert changed == "canonicalize,test-tune{percentile=99.5 bits=4 mode=fast},fuse-linear"
    assert parse_pipeline(changed)[1] == Tune(percentile=99.5, bits=4, mode="fast")
    with pytest.raises(PipelineError, match="pipeline has no test-tune: canonicalize"):
        with_options("canonicalize", "test-tune", bits=2)
    with pytest.raises(PipelineError, match=r"test-tune: .*unexpected keyword argument 'depth'"):
        with_options(text, "test-tune", depth=2)
    with pytest.raises(PipelineError, match=r"test-tune: bits must be in 1\.\.8, got 9"):
        with_options(text, "test-tune", bits=9)


@pytest.mark.parametrize(("text", "message", "col"), [
    ("canonicalize,test-tun", "unknown pass 'test-tun' (did you mean 'test-tune'?)", 14),
    ("test-tune{percentil=9}", "test-tune has no option 'percentil' (options: percentile,", 11),
    ("test-tune{bits=eight}", "option 'bits': expected int, got \"eight\"", 16),
    ("test-tune{mode=slow}", 'expected one of "fast", "exact", got "slow"', 16),
    ("test-tune{bits=9}", "bits must be in 1..8, got 9", 1),
    ("test-tune{bits=1 bits=2}", "option 'bits' given twice", 18),
    ("test-tune{bits}", "expected key=value or '}'", 11),
    ("a b", "expected ',' between names", 3),
])
def test_bad_pipelines_are_refused_with_a_caret(text, message, col):
    with pytest.raises(PipelineError) as info:
        parse_pipeline(text)
    msg = str(info.value)
    assert message in msg
    caret_line = msg.splitlines()[-1]
    assert caret_line.index("^") - 2 == col - 1, msg


def test_static_check_names_the_missing_pass():
    with pytest.raises(PipelineError) as info:
        PassManager(parse_pipeline("test-needs-tuned")).run(tiny_unet())
    assert "pass 'test-needs-tuned' (position 1) requires the IR property 'tuned'" in str(
        info.value)
    assert "add 'test-tune' before it" in str(info.value)
    PassManager(parse_pipeline("test-tune,test-needs-tuned")).run(tiny_unet())


def test_failures_name_the_pass_and_those_before_it():
    with pytest.raises(PassFailed) as info:
        PassManager(parse_pipeline("canonicalize,test-explode")).run(tiny_unet())
    assert "pass 'test-explode' failed (passes run before it: canonicalize)" in str(info.value)
    assert "layer 'c1' is broken" in str(info.value)
    assert info.value.exit_code == 1
    with pytest.raises(PassFailed) as info:
        PassManager(parse_pipeline("test-corrupt")).run(tiny_unet())
    assert "the IR is invalid after pass 'test-corrupt'" in str(info.value)
    assert info.value.exit_code == 3


def test_a_pass_that_breaks_its_promise_is_a_bug():
    graph = spiking_unet()
    with pytest.raises(PassFailed) as info:
        PassManager(parse_pipeline("test-false-claim")).run(graph)
    assert ("pass 'test-false-claim' did not establish what it promises (passes run before "
            "it: none): the IR property 'tiled' does not hold: ") in str(info.value)
    assert "has no block_shape; this is a bug in that pass" in str(info.value)
    assert info.value.exit_code == 3


def test_properties_are_constants_not_strings():
    with pytest.raises(TypeError, match=r"requires lists \['spiking'\] as plain values; use "
                                        r"the constants of snncc.ir.properties"):
        @dataclass(frozen=True)
        class Stringly(Pass):
            name = "test-stringly"
            requires = frozenset({"spiking"})


def test_every_builtin_pass_keeps_its_promises_on_the_default_pipelines():
    """Each built-in pass declares its properties; the manager checked every `ensures`
    along the way (a broken one would raise)."""
    from spiking_models import LOIHI, analog_unet, convert, images

    graph = analog_unet()
    convert(graph, "canonicalize,fold-batchnorm,remove-dead-ops," + LOIHI
            + ",tile-cores,partition-chips", calibration=images(4))
    assert set(graph.attrs.properties) == {"canonical", "linear-fused", "spiking",
                                           "normalized", "quantized", "tiled", "placed"}


def test_print_after_dump_dir_and_timing(tmp_path):
    out = io.StringIO()
    graph = tiny_unet()
    results = PassManager(parse_pipeline("canonicalize,test-tune{bits=3}"),
                          print_after={"test-tune"}, dump_dir=tmp_path, time_passes=True,
                          out=out).run(graph)
    text = out.getvalue()
    assert "// ----- IR after test-tune{bits=3} -----" in text
    assert "IR after canonicalize" not in text
    assert "// pass timing" in text and "canonicalize" in text
    assert sorted(p.name for p in tmp_path.glob("*.snnir")) == [
        "00-input.snnir", "01-canonicalize.snnir", "02-test-tune.snnir"]
    assert [r.name for r in results] == ["canonicalize", "test-tune"]
    assert graph.attrs.properties == ("canonical", "tuned")
    with pytest.raises(PipelineError, match="--print-ir-after names 'nope'"):
        PassManager(parse_pipeline("canonicalize"), print_after={"nope"}).run(tiny_unet())
