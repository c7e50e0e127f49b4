"""The numpy kernels against PyTorch, and the analog interpreter's batching and hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from irbuild import tiny_spiking, tiny_unet
from torch.nn import functional as F

from snncc.diagnostics import SnnccError
from snncc.ir import Graph, OnnxLoc, TensorType
from snncc.ir.interp import analog as A
from snncc.ir.interp import kernels as K
from snncc.ir.ops import (
    AffineConst,
    Conv2d,
    Dense,
    Flatten,
    Relu,
    Reshape,
    Softmax,
    Transpose,
)
from snncc.targets.numpy import NumpyTarget


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def close(got: np.ndarray, want: torch.Tensor | np.ndarray, tol: float = 1e-5) -> None:
    want = want.numpy() if isinstance(want, torch.Tensor) else want
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a))


# kernels ------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(groups=st.sampled_from([1, 2]), k=st.integers(1, 4), stride=st.integers(1, 3),
       dilation=st.integers(1, 2), pads=st.tuples(*[st.integers(0, 2)] * 4),
       size=st.integers(7, 10), bias=st.booleans())
def test_conv2d_matches_torch(groups, k, stride, dilation, pads, size, bias):
    x, w = rand(2, 4, size, size + 1), rand(6, 4 // groups, k, k, seed=1)
    b = rand(6, seed=2) if bias else None
    top, left, bottom, right = pads
    want = F.conv2d(F.pad(t(x), (left, right, top, bottom)), t(w), None if b is None else t(b),
                    stride=stride, dilation=dilation, groups=groups)
    close(K.conv2d(x, w, b, (stride, stride), pads, (dilation, dilation), groups), want)


@settings(max_examples=40, deadline=None)
@given(groups=st.sampled_from([1, 2]), k=st.integers(1, 4), stride=st.integers(1, 3),
       dilation=st.integers(1, 2), pad=st.integers(0, 1), out_pad=st.integers(0, 2))
def test_conv_transpose2d_matches_torch(groups, k, stride, dilation, pad, out_pad):
    out_pad = min(out_pad, max(stride, dilation) - 1)  # PyTorch's limit
    x, w, b = rand(2, 4, 5, 6), rand(4, 6 // groups, k, k, seed=1), rand(6, seed=2)
    want = F.conv_transpose2d(t(x), t(w), t(b), stride=stride, padding=pad,
                              output_padding=out_pad, groups=groups, dilation=dilation)
    got = K.conv_transpose2d(x, w, b, (stride, stride), (pad,) * 4, (dilation, dilation),
                             (out_pad, out_pad), groups)
    close(got, want)


def test_conv_transpose2d_asymmetric_pads_crop_each_side():
    x, w = rand(1, 2, 4, 4), rand(2, 3, 3, 3, seed=1)
    full = K.conv_transpose2d(x, w, strides=(2, 2))
    close(K.conv_transpose2d(x, w, strides=(2, 2), pads=(1, 0, 0, 2)), full[:, :, 1:, :-2])


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize(("k", "s", "p"), [(2, 2, 0), (3, 2, 1), (3, 3, 1), (3, 1, 1)])
def test_avg_pool2d_matches_torch(k, s, p, count_include_pad, ceil_mode):
    x = rand(2, 3, 9, 10)
    want = F.avg_pool2d(t(x), k, s, p, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    close(K.avg_pool2d(x, (k, k), (s, s), (p,) * 4, count_include_pad, ceil_mode), want)


def test_avg_pool2d_asymmetric_pads_divide_by_real_cells():
    x = np.ones((1, 1, 4, 4), np.float32)
    close(K.avg_pool2d(x, (2, 2), (2, 2), (1, 0, 0, 0)), np.ones((1, 1, 2, 2), np.float32))
    got = K.avg_pool2d(x, (2, 2), (2, 2), (1, 0, 1, 0), count_include_pad=True)
    close(got, np.full((1, 1, 3, 2), 0.5, np.float32) + np.array(
        [[0], [0.5], [0]], np.float32))


def test_sum_pool2d_is_avg_times_window():
    x = rand(2, 3, 8, 8)
    close(K.sum_pool2d(x, (2, 2), (2, 2)), 4 * K.avg_pool2d(x, (2, 2), (2, 2)))


def test_upsample_nearest_matches_torch():
    x = rand(2, 3, 4, 5)
    close(K.upsample_nearest(x, (2, 3)), F.interpolate(t(x), scale_factor=(2, 3)))


def test_pointwise_and_dense_kernels():
    x = rand(3, 4, 5, 6) * 20
    close(K.relu(x), F.relu(t(x)))
    close(K.sigmoid(x), torch.sigmoid(t(x)))
    assert np.isfinite(K.sigmoid(np.array([-1e4, 1e4], np.float32))).all()
    close(K.softmax(x, 1), torch.softmax(t(x), 1))
    scale, bias, mean, var = (np.abs(rand(4, seed=i)) + 0.1 for i in range(4))
    close(K.batchnorm(x, scale, bias, mean, var, 1e-5),
          F.batch_norm(t(x), t(mean), t(var), t(scale), t(bias), eps=1e-5), tol=1e-4)
    w, b = rand(7, 30), rand(7, seed=1)
    # terms up to ~400 summed in float32: absolute rounding ~1e-4 whatever the BLAS kernel
    close(K.dense(x.reshape(12, 30), w, b), F.linear(t(x.reshape(12, 30)), t(w), t(b)), tol=1e-4)
    close(K.affine(x, np.float32(2), rand(6, seed=3)), x * 2 + rand(6, seed=3))
    close(K.add([x, x, x]), 3 * x)
    close(K.concat([x, x[:, :1]], 1), np.concatenate([x, x[:, :1]], 1))
    assert K.flatten(x, 2).shape == (12, 30)


def test_kernels_take_spikes():
    spikes = np.random.default_rng(0).random((2, 4, 6, 6)) < 0.3
    w = rand(3, 4, 3, 3)
    close(K.conv2d(spikes, w), K.conv2d(spikes.astype(np.float32), w))


def test_tiny_unet_matches_torch():
    graph = tiny_unet(size=8)
    x = rand(5, 1, 8, 8)
    w = {name: t(graph.weights[name]) for name in graph.weights}
    r1 = F.relu(F.conv2d(t(x), w["c1.w"], w["c1.b"], padding=1))
    r2 = F.relu(F.conv2d(F.avg_pool2d(r1, 2), w["c2.w"], padding=1))
    up = F.conv_transpose2d(r2, w["up.w"], stride=2)
    want = torch.sigmoid(F.conv2d(torch.cat([up, r1], 1), w["c3.w"], w["c3.b"]))
    close(A.run_analog(graph, [x], batch_size=2)[0], want)


# the interpreter ------------------------------------------------------------------------
def mixing_graph() -> Graph:
    """Ops that touch the batch axis, so they must run sample by sample."""
    g = Graph("mix")
    x = g.add_input("x", TensorType((1, 2, 3, 3)))
    c = g.add(Conv2d, [x], Conv2d.Attrs(g.weights.add("w", rand(4, 2, 1, 1))), name="c")
    f0 = g.add(Flatten, [c], Flatten.Attrs(0), name="f0")                  # (1, 36)
    tr = g.add(Transpose, [f0], Transpose.Attrs((1, 0)), name="tr")        # (36, 1)
    sm = g.add(Softmax, [tr], Softmax.Attrs(0), name="sm")                 # over 36
    rs = g.add(Reshape, [sm], Reshape.Attrs((4, 9)), name="rs")            # (4, 9)
    af = g.add(AffineConst, [rs], AffineConst.Attrs(
        offset=g.weights.add("off", rand(4, 9, seed=5))), name="af")      # varies by row
    g.outputs = [g.add(Dense, [af], Dense.Attrs(g.weights.add("d", rand(3, 9))), name="y")]
    return g


def by_hand(g: Graph, image: np.ndarray) -> np.ndarray:
    w = g.weights
    c = K.conv2d(image[None], w["w"]).reshape(1, 36).T
    e = np.exp(c - c.max())
    return ((e / e.sum()).reshape(4, 9) + w["off"]) @ w["d"].T


def test_batch_mixing_ops_run_per_sample():
    g = mixing_graph()
    x = rand(5, 2, 3, 3)
    (got,) = A.run_analog(g, [x], batch_size=2)
    assert got.shape == (20, 3)
    close(got, np.concatenate([by_hand(g, image) for image in x]), tol=1e-5)
    steps = {s.op.result.name: s.rowwise for s in A._plan(g)}
    assert steps == {"c": True, "f0": False, "tr": False, "sm": False, "rs": False, "af": False,
                     "y": True}


@pytest.mark.parametrize("batch_size", [1, 2, 3, 16])
def test_chunking_does_not_change_results(batch_size):
    g = tiny_unet(size=8)
    x = rand(7, 1, 8, 8)
    (whole,) = A.run_analog(g, [x], batch_size=64)
    (chunked,) = A.run_analog(g, [x], batch_size=batch_size)
    np.testing.assert_array_equal(whole, chunked)


def test_ir_batch_above_one_takes_stacked_samples():
    g = Graph("b2")
    x = g.add_input("x", TensorType((2, 3)))
    g.outputs = [g.add(Softmax, [x], Softmax.Attrs(0), name="y")]
    data = rand(6, 3)
    (got,) = A.run_analog(g, [data], batch_size=2)
    close(got, np.concatenate([K.softmax(data[i:i + 2], 0) for i in range(0, 6, 2)]))
    with pytest.raises(SnnccError, match=r"expected N\*2x3"):
        A.run_analog(g, [rand(5, 3)])


def test_values_are_freed_after_their_last_use():
    g = tiny_unet(size=8)
    freed = [key for step in A._plan(g) for key in step.frees]
    uses = {id(v) for op in g.ops for v in op.inputs} - {id(v) for v in g.outputs}
    assert sorted(freed) == sorted(uses)
    last = {id(v): i for i, op in enumerate(g.ops) for v in op.inputs}
    for i, step in enumerate(A._plan(g)):
        assert all(last[key] == i for key in step.frees)


def test_observe_sees_watched_values_per_chunk():
    g = tiny_unet(size=8)
    relus = [op.result for op in g.ops_of(Relu)]
    x = rand(5, 1, 8, 8)
    seen: list[tuple[str, int]] = []
    A.run_analog(g, [x], batch_size=2, watch=relus,
                 observe=lambda v, a: seen.append((v.name, len(a))))
    assert seen == [(n, k) for k in (2, 2, 1) for n in ("r1", "r2")]
    values = A.collect_values(g, [x], relus, batch_size=2)
    r1 = K.relu(K.conv2d(x, g.weights["c1.w"], g.weights["c1.b"], pads=(1, 1, 1, 1)))
    close(values[relus[0]], r1)
    everything: list[str] = []
    A.run_analog(g, [x[:1]], observe=lambda v, a: everything.append(v.name))
    assert everything == ["x"] + [op.result.name for op in g.ops]


def test_kernel_failure_names_the_op(monkeypatch):
    g = tiny_unet(size=8)

    def broken(op, xs, w):
        raise ValueError("boom")

    monkeypatch.setattr(A.ANALOG_KERNELS, "_entries", {**A.ANALOG_KERNELS._entries,
                        Relu: A.KernelEntry(broken, lambda op, w: True)})
    with pytest.raises(A.AnalogRunError) as err:
        A.run_analog(g, [rand(1, 1, 8, 8)])
    assert str(err.value) == ("tiny.onnx: ONNX node '/r1/Relu' (Relu): act.relu '%r1' failed "
                              "in the numpy analog run: ValueError: boom")
    assert isinstance(err.value.__cause__, ValueError) and err.value.exit_code == 3


def test_spiking_ops_are_refused_up_front():
    g = tiny_spiking()
    g.ops[2].loc = OnnxLoc("m.onnx", "/s", "Relu")
    with pytest.raises(SnnccError, match=r"neuron.if '%s' at m.onnx: ONNX node '/s'") as err:
        A.run_analog(g, [rand(1, 2, 6, 6)])
    assert err.value.exit_code == 1


def test_bad_inputs_are_user_errors():
    g = tiny_unet(size=8)
    with pytest.raises(SnnccError, match=r"has shape 2x1x8x7; expected Nx1x8x8"):
        A.run_analog(g, [rand(2, 1, 8, 7)])
    with pytest.raises(SnnccError, match="takes 1 input"):
        A.run_analog(g, [])
    with pytest.raises(SnnccError, match="batch_size"):
        A.run_analog(g, [rand(1, 1, 8, 8)], batch_size=0)


def test_numpy_target_runs_analog_mode():
    g = tiny_unet(size=8)
    x = rand(3, 1, 8, 8)
    result = NumpyTarget(batch_size=2).run(g, [x], mode="analog")
    np.testing.assert_array_equal(result.outputs[0], A.run_analog(g, [x])[0])
