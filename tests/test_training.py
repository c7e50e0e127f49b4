"""Tests for snncc.training (rate regularizer, Loihi rate curve, ONNX + stats export) and the
EM U-Net example's model and data code."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from snncc.data.stats import LayerStats, RateStats, RateStatsError, read_onnx_stats
from snncc.training.export import (
    export_with_stats,
    match_relu_nodes,
    onnx_rate_stats,
    scope_to_module_path,
)
from snncc.training.torch_rate import (
    ActivationCapture,
    LoihiRateReLU,
    PercentileRateRegularizer,
    RateTarget,
    percentile,
    percentile_rate_loss,
    to_loihi_rate,
    to_plain_relu,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "em_unet"


def load_example(name: str) -> ModuleType:
    """Import ``examples/em_unet/<name>.py`` by path (the examples are not a package)."""
    spec = importlib.util.spec_from_file_location(f"em_unet_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def unet_module() -> ModuleType:
    return load_example("model")


# --- percentile and the regularizer loss ------------------------------------------------


@pytest.mark.parametrize("q", [0.0, 12.5, 50.0, 99.0, 99.9, 100.0])
@pytest.mark.parametrize("n", [1, 2, 7, 1000, 4099])
def test_percentile_matches_numpy(q: float, n: int) -> None:
    values = np.random.default_rng(n).normal(size=n)
    got = float(percentile(torch.from_numpy(values), q))
    assert got == pytest.approx(np.percentile(values, q), rel=1e-12, abs=1e-12)


def test_loss_is_zero_inside_the_band() -> None:
    target = RateTarget(percentile=99.9, lo_hz=100.0, hi_hz=250.0, weight=1.0, rate_scale_hz=250)
    # 99.9th percentiles 0.4, 0.7 and 1.0 -> 100, 175 and 250 Hz: all inside, ends included.
    acts = [torch.full((2, 3, 8, 8), v) for v in (0.4, 0.7, 1.0)]
    assert float(percentile_rate_loss(acts, target)) == 0.0


def test_loss_is_quadratic_outside_the_band() -> None:
    target = RateTarget(percentile=50.0, lo_hz=100.0, hi_hz=200.0, weight=0.5, rate_scale_hz=100)

    def loss_at(median: float) -> float:
        act = torch.tensor([0.0, median, 10.0])  # the median is the middle element
        return float(percentile_rate_loss([act], target))

    assert loss_at(3.0) == pytest.approx(0.5 * 100.0**2)  # 300 Hz, 100 above
    assert loss_at(4.0) == pytest.approx(0.5 * 200.0**2)  # twice as far: four times the loss
    assert loss_at(0.5) == pytest.approx(0.5 * 50.0**2)  # 50 Hz, 50 below
    both = percentile_rate_loss(
        [torch.tensor([0.0, 3.0, 10.0]), torch.tensor([0.0, 0.5, 1.0])], target
    )
    assert float(both) == pytest.approx(loss_at(3.0) + loss_at(0.5))  # summed over layers


def test_rate_target_rejects_bad_band() -> None:
    with pytest.raises(ValueError):
        RateTarget(lo_hz=300.0, hi_hz=100.0)
    with pytest.raises(ValueError):
        RateTarget(percentile=101.0)


def band_distance(rates: dict[str, float], target: RateTarget) -> float:
    return sum(max(target.lo_hz - r, 0.0) + max(r - target.hi_hz, 0.0) for r in rates.values())


def test_regularized_training_moves_rates_towards_band(unet_module: ModuleType) -> None:
    torch.manual_seed(0)
    model = unet_module.UNet(width=2)
    x = torch.rand(2, 1, 64, 64)
    y = (torch.rand(2, 1, 64, 64) > 0.3).float()
    with PercentileRateRegularizer(model, RateTarget(rate_scale_hz=250.0)) as probe:
        model(x)
        start = probe.percentile_rates_hz()
    # A band well above every layer's initial rate, so every layer starts outside it.
    lo = 2.0 * max(start.values())
    target = RateTarget(lo_hz=lo, hi_hz=1.5 * lo, weight=1e-4, rate_scale_hz=250.0)
    assert all(r < target.lo_hz for r in start.values())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with PercentileRateRegularizer(model, target) as reg:
        for _ in range(25):
            bce = nn.functional.binary_cross_entropy_with_logits(model.logits(x), y)
            optimizer.zero_grad()
            (bce + reg.loss()).backward()
            optimizer.step()
        model(x)
        end = reg.percentile_rates_hz()
    assert band_distance(end, target) < 0.5 * band_distance(start, target)


def test_regularizer_hooks_are_removed(unet_module: ModuleType) -> None:
    model = unet_module.UNet(width=2)
    with PercentileRateRegularizer(model) as reg:
        assert len(reg.names) == 12
    model(torch.rand(1, 1, 64, 64))
    assert reg.outputs == {}
    assert all(not m._forward_hooks for m in model.modules())


# --- Loihi rate curve ---------------------------------------------------------------------


def test_loihi_rate_relu_forward_follows_the_staircase() -> None:
    act = LoihiRateReLU(rate_scale_hz=250.0, dt=0.001)  # J = 0.25 * a threshold/step
    a = torch.tensor([-1.0, 0.0, 0.3, 0.5, 1.0, 1.2, 2.0, 3.0, 10.0])
    expected = [0.0 if x <= 0 else (1.0 / math.ceil(1.0 / (0.25 * x))) / 0.25 for x in a.tolist()]
    assert act(a).tolist() == pytest.approx(expected, rel=1e-6)
    # Spot values by hand: J = 0.3 -> every 4th step (1.0); J = 0.75 -> every 2nd (2.0);
    # J = 2.5 saturates at one spike per step (4.0); J = 0.075 -> every 14th (1/14/0.25).
    got = act(torch.tensor([1.2, 3.0, 10.0, 0.3])).tolist()
    assert got == pytest.approx([1.0, 2.0, 4.0, 4.0 / 14.0], rel=1e-6)


def test_loihi_rate_relu_gradient_is_finite_and_positive() -> None:
    act = LoihiRateReLU(rate_scale_hz=250.0, dt=0.001)
    a = torch.tensor([-2.0, -0.1, 1e-6, 0.3, 1.2, 4.0, 50.0], requires_grad=True)
    act(a).sum().backward()
    assert a.grad is not None
    grad = a.grad.tolist()
    assert all(math.isfinite(g) for g in grad)
    assert grad[:2] == [0.0, 0.0]
    j = 0.25 * np.array([1e-6, 0.3, 1.2, 4.0, 50.0])
    assert grad[2:] == pytest.approx((1.0 / (1.0 + j / 2.0) ** 2).tolist(), rel=1e-5)


def test_activation_swaps_round_trip(unet_module: ModuleType) -> None:
    model = unet_module.UNet(width=2)
    before = [n for n, m in model.named_modules() if isinstance(m, nn.ReLU)]
    assert to_loihi_rate(model, 250.0) == before
    assert all(isinstance(model.get_submodule(n), LoihiRateReLU) for n in before)
    assert to_plain_relu(model) == before
    assert all(type(model.get_submodule(n)) is nn.ReLU for n in before)


# --- ONNX export and the stats file -------------------------------------------------------


def relu_node_names(path: Path) -> list[str]:
    return [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Relu"]


def test_export_writes_one_stats_entry_per_relu_node(
    unet_module: ModuleType, tmp_path: Path
) -> None:
    torch.manual_seed(1)
    model = unet_module.UNet(width=2)
    to_loihi_rate(model, 250.0)  # the export must still produce plain Relu nodes
    calib = torch.rand(3, 1, 64, 64)
    result = export_with_stats(
        model, calib, tmp_path / "u.onnx", tmp_path / "u.stats.json", percentile=99.0
    )
    nodes = relu_node_names(tmp_path / "u.onnx")
    assert len(nodes) == 12
    raw = json.loads((tmp_path / "u.stats.json").read_text())
    assert raw["format"] == "snncc-rate-stats" and raw["version"] == 1
    assert list(raw["layers"]) == nodes
    assert set(result.node_to_module.values()) == {
        n for n, m in model.named_modules() if isinstance(m, LoihiRateReLU)
    }
    assert result.node_to_module["/enc1/act1/Relu"] == "enc1.act1"
    assert result.max_abs_diff < 1e-5

    graph = onnx.load(str(tmp_path / "u.onnx")).graph
    assert [i.name for i in graph.input] == ["image"]
    assert [o.name for o in graph.output] == ["prob"]
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 1, 64, 64]

    # Stats are those of plain-ReLU activations over all calibration inputs.
    plain = unet_module.UNet(width=2)
    plain.load_state_dict(model.state_dict())
    with ActivationCapture(plain) as cap, torch.no_grad():
        plain(calib)
        enc1 = cap.outputs["enc1.act1"].numpy()
    stats = RateStats.load(tmp_path / "u.stats.json")
    layer = stats.layers["/enc1/act1/Relu"]
    assert layer.samples == enc1.size == 3 * 2 * 64 * 64
    assert layer.percentile_activation == pytest.approx(np.percentile(enc1, 99.0), rel=1e-6)
    assert layer.max_activation == pytest.approx(enc1.max(), rel=1e-6)
    assert layer.mean_activation == pytest.approx(enc1.mean(), rel=1e-5)
    assert read_onnx_stats(tmp_path / "u.onnx") == stats  # the ONNX file carries them too


def test_stats_recomputed_from_the_onnx_file_alone(
    unet_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/em_unet/recompute_stats.py: new calibration inputs, the module gone; only the
    stats file and the metadata change, and they equal what the export would have written."""
    torch.manual_seed(2)
    model = unet_module.UNet(width=2)
    first, other = torch.rand(2, 1, 64, 64), torch.rand(3, 1, 64, 64)
    export_with_stats(model, first, tmp_path / "a.onnx", tmp_path / "a.stats.json")
    export_with_stats(model, other, tmp_path / "b.onnx", tmp_path / "b.stats.json")
    expected = RateStats.load(tmp_path / "b.stats.json")
    assert expected != RateStats.load(tmp_path / "a.stats.json")
    monkeypatch.syspath_prepend(str(EXAMPLE))  # the script imports its sibling data.py
    recompute = load_example("recompute_stats")
    before = recompute.graph_bytes(tmp_path / "a.onnx")
    stats, out = onnx_rate_stats(tmp_path / "a.onnx", other.numpy())
    assert stats == expected  # the same computation as the export's, on the same inputs
    with torch.no_grad():
        np.testing.assert_allclose(out, model(other).numpy(), atol=1e-5)
    (tmp_path / "training_log.json").write_text('{"final": {"val_crops": 320}}')
    recompute.main([str(tmp_path / "a.onnx")])  # on the 1280 training grid crops
    data = load_example("data")
    stats, _ = onnx_rate_stats(tmp_path / "b.onnx", data.calibration_crops())
    assert RateStats.load(tmp_path / "a.stats.json") == stats
    assert read_onnx_stats(tmp_path / "a.onnx") == stats
    assert recompute.graph_bytes(tmp_path / "a.onnx") == before
    log = json.loads((tmp_path / "training_log.json").read_text())
    assert log["final"] == {"val_crops": 320}
    assert log["rate_stats"]["crops"] == 1280
    assert log["rate_stats"]["percentile_rates_hz"] == pytest.approx(stats.percentile_rates_hz())


def test_calibration_crops_are_the_training_grid() -> None:
    data = load_example("data")
    crops = data.calibration_crops()
    assert crops.shape == (len(data.TRAIN_SLICES) * 64, 1, 64, 64)
    train = data.grid_crops(*data.load_slices(data.TRAIN_SLICES))[0]
    np.testing.assert_array_equal(crops, train)
    val = data.grid_crops(*data.load_slices(data.VAL_SLICES))[0]
    assert not {c.tobytes() for c in crops} & {v.tobytes() for v in val}  # no validation crop


class FunctionalRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.act(self.conv(x)) - 0.1)


class ReusedRelu(FunctionalRelu):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self.act(x)))


@pytest.mark.parametrize("net", [FunctionalRelu, ReusedRelu])
def test_export_rejects_relus_without_a_module_of_their_own(
    net: type[nn.Module], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="one-to-one"):
        export_with_stats(net(), torch.rand(2, 1, 8, 8), tmp_path / "m.onnx", tmp_path / "s.json")


def test_scope_names_of_nested_containers() -> None:
    assert scope_to_module_path("/enc1/act1/Relu") == "enc1.act1"
    assert scope_to_module_path("/layer1/layer1.0/relu/Relu") == "layer1.0.relu"
    assert scope_to_module_path("Relu_3") == ""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"], name="/2/2.1/Relu")], "g", [], []
    )
    assert match_relu_nodes(graph, ["2.1"]) == {"/2/2.1/Relu": "2.1"}


def test_stats_file_validation(tmp_path: Path) -> None:
    stats = RateStats(0.001, 99.9, 250.0, {"/a/Relu": LayerStats(0.8, 1.0, 0.1, 10)})
    stats.save(tmp_path / "s.json")
    assert RateStats.load(tmp_path / "s.json") == stats
    assert stats.percentile_rates_hz() == {"/a/Relu": pytest.approx(200.0)}
    bad = stats.to_json() | {"format": "other"}
    with pytest.raises(RateStatsError, match="format"):
        RateStats.from_json(bad)
    missing = stats.to_json() | {"layers": {"/a/Relu": {"max_activation": 1.0}}}
    with pytest.raises(RateStatsError, match="percentile_activation"):
        RateStats.from_json(missing)


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, snncc.training as t\n"
        "assert 'torch' not in sys.modules, 'torch imported eagerly'\n"
        "t.RateStats\n"
        "assert 'torch' not in sys.modules\n"
        "t.LoihiRateReLU\n"
        "assert 'torch' in sys.modules, 'lazy attribute did not load torch_rate'\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --- example model and data ---------------------------------------------------------------


def test_unet_shape_and_size(unet_module: ModuleType) -> None:
    model = unet_module.UNet()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 64, 64))
    assert out.shape == (2, 1, 64, 64)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert unet_module.parameter_count(model) < 100_000
    assert not any(isinstance(m, (nn.MaxPool2d, nn.BatchNorm2d)) for m in model.modules())
    variant = unet_module.UNet(batchnorm=True, upsample="nearest")
    with torch.no_grad():
        assert variant.eval()(torch.rand(2, 1, 64, 64)).shape == (2, 1, 64, 64)
    assert any(isinstance(m, nn.Upsample) for m in variant.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in variant.modules()) == 12


def test_data_split_sampler_and_grid() -> None:
    data = load_example("data")
    assert set(data.TRAIN_SLICES).isdisjoint(data.VAL_SLICES)
    images, labels = data.load_slices(data.VAL_SLICES[:1])
    assert images.shape == labels.shape == (1, 512, 512)
    assert images.dtype == np.float32 and images.min() >= 0.0 and images.max() <= 1.0
    assert set(np.unique(labels)) <= {0.0, 1.0}
    x, y = data.grid_crops(images, labels)
    assert x.shape == (64, 1, 64, 64)
    np.testing.assert_array_equal(x[9, 0], images[0, 64:128, 64:128])  # row 1, column 1
    np.testing.assert_array_equal(y[9, 0], labels[0, 64:128, 64:128])
    a = data.CropSampler(images, labels, seed=3).sample(4)
    b = data.CropSampler(images, labels, seed=3).sample(4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (4, 1, 64, 64)
