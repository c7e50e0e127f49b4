"""`snncc baseline`: the ANN as a user deploys it, timed and metered, for the energy report.

On a CPU the model runs in onnxruntime; on an NVIDIA GPU in torch with CUDA graphs (or
onnxruntime's CUDA provider where torch with CUDA is missing). Each workload (a crop at
batch 1 = online, a batch of crops, a whole slice at batch 1) is run in a loop of at least
`min_seconds`, `repeats` times, reading an energy meter (snncc.evaluate.meters) before and
after; the file gives the median and range of the repeats. Board energy is what the meter
counts; dynamic energy subtracts the idle power measured before, times the run's time.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from snncc import __version__
from snncc.diagnostics import SnnccError
from snncc.evaluate.baseline_report import FORMAT, model_sha256
from snncc.evaluate.meters import (
    Meter,
    StatedPowerMeter,
    find_rapl,
    idle_power,
    nvml_meter,
    open_nvml,
)
from snncc.hw.energy import XEON_TDP_W_PER_CORE, StatedPower, count_macs
from snncc.ir.graph import Graph


@dataclass(frozen=True)
class BaselineSettings:
    """What to measure: `device` is "cpu", "cuda" or "cuda:N"; `power` forces time ×
    that stated power instead of a counter; `slice_size` None skips the slice."""

    model: Path
    device: str = "cpu"
    batch: int = 64
    slice_size: tuple[int, int] | None = (512, 512)
    repeats: int = 5
    min_seconds: float = 1.0
    idle_seconds: float = 3.0
    power: StatedPower | None = None
    input_shapes: dict[str, tuple[int, ...]] | None = None
    command: str = ""


@dataclass(frozen=True)
class Workload:
    """One thing to time: `run()` processes `shape[0]` images of `shape`."""

    name: str
    what: str
    per: str  # "crop" or "slice"
    shape: tuple[int, ...]
    run: Callable[[], None]


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and range of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(workload: Workload, meter: Meter, idle_w: float | None, repeats: int,
            min_seconds: float) -> dict[str, Any]:
    """Time and energy per image of `workload`: `repeats` loops of ≥ `min_seconds` each,
    after a warm-up loop of half that."""
    images = workload.shape[0]
    _loop(workload.run, min_seconds / 2)
    seconds, joules, calls = [], [], []
    for _ in range(repeats):
        start_j = meter.joules()
        n, elapsed = _loop(workload.run, min_seconds)
        joules.append((meter.joules() - start_j) / (n * images))
        seconds.append(elapsed / (n * images))
        calls.append(n)
    dynamic = (None if idle_w is None
               else spread([j - idle_w * s for j, s in zip(joules, seconds, strict=True)]))
    return {"what": workload.what, "per": workload.per, "batch": images,
            "input_shape": list(workload.shape), "calls": calls,
            "latency_s": spread([s * images for s in seconds]),
            "seconds_per_image": spread(seconds), "board_j_per_image": spread(joules),
            "dynamic_j_per_image": dynamic}


def _loop(run: Callable[[], None], min_seconds: float) -> tuple[int, float]:
    """Call `run` until `min_seconds` have passed: (calls, seconds)."""
    start, n = time.perf_counter(), 0
    while True:
        run()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return n, elapsed


def _shapes(crop: tuple[int, ...], settings: BaselineSettings) -> dict[str, tuple[int, ...]]:
    shapes = {"crop_online": crop, "crop_batched": (settings.batch, *crop[1:])}
    if settings.slice_size is not None:
        shapes["slice_online"] = (1, *crop[1:-2], *settings.slice_size)
    return shapes


WHAT = {"crop_online": "one crop per request (batch 1, online)",
        "crop_batched": "crops in batches",
        "slice_online": "one whole slice per request (batch 1, online)",
        "crop_online_eager": "one crop per request, eager PyTorch (no CUDA graph)"}


REQUIRED = ("crop_online", "crop_online_eager")  # the model's own shape: must run


# runtimes ------------------------------------------------------------------------------
def _resized_model(model: Path, shape: tuple[int, ...]) -> bytes:
    """The ONNX model with its (first) input fixed to `shape` and free output shapes."""
    import onnx

    proto = onnx.load(str(model))
    constants = {t.name for t in proto.graph.initializer}
    value = next(v for v in proto.graph.input if v.name not in constants)
    for dim, size in zip(value.type.tensor_type.shape.dim, shape, strict=True):
        dim.Clear()
        dim.dim_value = size
    for value in proto.graph.output:
        for k, dim in enumerate(value.type.tensor_type.shape.dim):
            dim.Clear()
            dim.dim_param = f"d{k}"
    del proto.graph.value_info[:]
    return proto.SerializeToString()


def _ort_runner(model: Path, shape: tuple[int, ...], provider: str) -> Callable[[], None]:
    import onnxruntime as ort

    session = ort.InferenceSession(_resized_model(model, shape), providers=[provider])
    if session.get_providers()[0] != provider:  # onnxruntime falls back to the CPU quietly
        raise SnnccError(f"onnxruntime could not start {provider} (it runs "
                         f"{session.get_providers()}); is its CUDA runtime installed?")
    feed = {session.get_inputs()[0].name:
            np.random.default_rng(0).random(shape, dtype=np.float32)}
    session.run(None, feed)
    return lambda: session.run(None, feed)


def _torch_runners(graph: Graph, shapes: dict[str, tuple[int, ...]]
                   ) -> dict[str, Callable[[], Callable[[], None]]]:
    from snncc.evaluate.torch_ann import TorchAnn, cuda_runner

    module = TorchAnn(graph)
    runners = {name: (lambda s=shape: cuda_runner(module, s, cuda_graph=True))
               for name, shape in shapes.items()}
    runners["crop_online_eager"] = lambda: cuda_runner(module, shapes["crop_online"], False)
    return runners


def _cpu_info() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _setup_cpu(settings: BaselineSettings) -> tuple[dict[str, Any], Meter, str]:
    import onnxruntime as ort

    cores = len(os.sched_getaffinity(0))
    device = {"kind": "cpu", "name": _cpu_info(), "cores": cores,
              "driver": f"{platform.system()} {platform.release()}",
              "runtime": f"onnxruntime {ort.__version__}, CPUExecutionProvider, its default "
                         f"threads (one per core: {cores})"}
    if settings.power is not None:
        return device, StatedPowerMeter(settings.power), "--power given"
    rapl, why = find_rapl()
    if rapl is not None:
        return device, rapl, ""
    return device, StatedPowerMeter(XEON_TDP_W_PER_CORE, per_cpu_second=True), why


def _gpu_runtime() -> str:
    """"torch" with CUDA where it is installed, else "onnxruntime" with its CUDA provider."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return "torch"
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        return "onnxruntime"
    raise SnnccError("--device cuda: no GPU runtime: install torch with CUDA or "
                     "onnxruntime-gpu (or no GPU is visible)")


def _setup_gpu(settings: BaselineSettings, runtime: str) -> tuple[dict[str, Any], Meter, str]:
    index = int(settings.device.partition(":")[2] or 0)
    nvml, handle = open_nvml(index)
    name = nvml.nvmlDeviceGetName(handle)
    driver = nvml.nvmlSystemGetDriverVersion()
    if runtime == "torch":
        import torch

        torch.cuda.set_device(index)
        text = f"torch {torch.__version__} (CUDA {torch.version.cuda}), CUDA graphs"
    else:
        import onnxruntime as ort

        text = f"onnxruntime {ort.__version__}, CUDAExecutionProvider"
    device = {"kind": "cuda", "index": index,
              "name": name.decode() if isinstance(name, bytes) else name,
              "driver": driver.decode() if isinstance(driver, bytes) else driver,
              "runtime": text}
    if settings.power is not None:
        return device, StatedPowerMeter(settings.power), "--power given"
    meter, why = nvml_meter(nvml, handle)
    return device, meter, why


def run_baseline(settings: BaselineSettings, progress: Callable[[str], None] = print
                 ) -> dict[str, Any]:
    """Measure every workload of `settings` and return the baseline file's contents."""
    from snncc.frontend.onnx import import_onnx

    graph = import_onnx(settings.model, settings.input_shapes)
    crop = graph.inputs[0].type.shape
    shapes = _shapes(crop, settings)
    if settings.device == "cpu":
        device, meter, why = _setup_cpu(settings)
        runners = {k: (lambda s=s: _ort_runner(settings.model, s, "CPUExecutionProvider"))
                   for k, s in shapes.items()}
    else:
        runtime = _gpu_runtime()
        device, meter, why = _setup_gpu(settings, runtime)
        if runtime == "torch":
            runners = _torch_runners(graph, shapes)
            shapes["crop_online_eager"] = crop
        else:
            runners = {k: (lambda s=s: _ort_runner(settings.model, s,
                                                    "CUDAExecutionProvider"))
                       for k, s in shapes.items()}
    load = os.getloadavg()
    progress(f"measuring on {device['name']} ({device['runtime']}); energy: {meter.method}")
    idle_w = idle_power(meter, settings.idle_seconds)
    workloads, skipped = {}, {}
    for key, shape in shapes.items():
        try:
            run = runners[key]()
        except Exception as err:
            if key in REQUIRED:
                raise
            # the runtime refuses a shape other than the model's own (e.g. a fixed Reshape)
            skipped[key] = f"{type(err).__name__}: {err}".splitlines()[0]
            continue
        progress(f"  {key}: {'x'.join(map(str, shape))}")
        workloads[key] = measure(Workload(key, WHAT[key], key.partition("_")[0], shape, run),
                                 meter, idle_w, settings.repeats, settings.min_seconds)
    stated = None
    if isinstance(meter, StatedPowerMeter):
        stated = {"watts": meter.power.watts, "source": meter.power.source,
                  "times": "CPU time of the process" if meter.per_cpu_second else "wall time"}
    return {
        "format": FORMAT,
        "snncc_version": __version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": settings.command,
        "model": {"path": str(settings.model), "sha256": model_sha256(settings.model),
                  "crop_shape": list(crop),
                  "macs_per_crop": count_macs(graph)},
        "device": device,
        "method": meter.method,
        "measured": meter.measured,
        "no_counter": why or None,
        "stated_power": stated,
        "idle_power_w": idle_w,
        "load_average": {"before": load[0], "after": os.getloadavg()[0],
                         "cores": os.cpu_count()},
        "settings": {"repeats": settings.repeats, "min_seconds": settings.min_seconds,
                     "idle_seconds": settings.idle_seconds if meter.measured else 0.0},
        "workloads": workloads,
        "skipped": skipped,
    }
