"""Energy meters for `snncc baseline`: cumulative joule counters read before and after a
measured loop. NVML's total-energy counter on NVIDIA GPUs (the whole board), RAPL's
package counters under /sys/class/powercap on CPUs where they are readable, and where no
counter exists, wall time × a stated power whose source the baseline file records."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from snncc.diagnostics import SnnccError
from snncc.hw.energy import StatedPower

RAPL_ROOT = Path("/sys/class/powercap")


class Meter(Protocol):
    """A cumulative energy counter in joules; `measured` is False for time × stated power."""

    method: str
    measured: bool

    def joules(self) -> float: ...


@dataclass
class StatedPowerMeter:
    """No counter: energy is wall time × `power.watts`, or with `per_cpu_second` the CPU
    time of this process (all its threads) × `power.watts` per busy core, which charges
    only the cores the run used when other work shares the machine."""

    power: StatedPower
    per_cpu_second: bool = False
    measured: bool = False
    method: str = field(init=False)

    def __post_init__(self) -> None:
        self.method = (f"CPU time of this process × {self.power.watts:.3g} W per busy core "
                       f"({self.power.source})" if self.per_cpu_second else
                       f"wall time × stated power {self.power.watts:.3g} W "
                       f"({self.power.source})")

    def joules(self) -> float:
        clock = time.process_time if self.per_cpu_second else time.perf_counter
        return clock() * self.power.watts


@dataclass
class NvmlMeter:
    """NVML's total energy since the driver loaded (mJ, Volta and later), whole board."""

    nvml: Any  # the pynvml module
    handle: Any
    measured: bool = True
    method: str = "NVML total-energy counter (nvmlDeviceGetTotalEnergyConsumption), board"

    def joules(self) -> float:
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1e3


@dataclass
class RaplMeter:
    """The sum of RAPL's package counters (µJ, wrapping at max_energy_range_uj)."""

    domains: list[Path]
    measured: bool = True
    method: str = "RAPL package energy counters (/sys/class/powercap), all packages"
    _last: dict[Path, int] = field(default_factory=dict)
    _total: dict[Path, int] = field(default_factory=dict)

    def joules(self) -> float:
        for domain in self.domains:
            now = int((domain / "energy_uj").read_text())
            wrap = int((domain / "max_energy_range_uj").read_text()) + 1
            if domain in self._last:
                self._total[domain] = self._total.get(domain, 0) + (now - self._last[domain]) % wrap
            self._last[domain] = now
        return sum(self._total.values()) / 1e6


def find_rapl(root: Path = RAPL_ROOT) -> tuple[RaplMeter | None, str]:
    """RAPL's package domains under `root` (intel-rapl:N), or None and why not."""
    if not root.is_dir():
        return None, f"no RAPL: {root} does not exist on this machine"
    domains = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
    if not domains:
        return None, f"no RAPL: {root} has no intel-rapl package domains"
    meter = RaplMeter(domains)
    try:
        meter.joules()
    except (OSError, ValueError) as err:
        return None, (f"no RAPL: cannot read {root}/intel-rapl:*/energy_uj ({err}); it is "
                      "root-only since Linux 5.10")
    return meter, ""


def open_nvml(index: int) -> tuple[Any, Any]:
    """pynvml (from nvidia-ml-py), initialized, and the handle of GPU `index`."""
    try:
        import pynvml
    except ImportError:
        raise SnnccError("--device cuda needs NVML to read the GPU's energy: "
                         "pip install nvidia-ml-py") from None
    try:
        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
    except pynvml.NVMLError as err:
        raise SnnccError(f"--device cuda:{index}: NVML cannot open the GPU: {err}") from None


def nvml_meter(nvml: Any, handle: Any) -> tuple[Meter, str]:
    """NVML's energy counter, or where it is not supported (before Volta) time × the
    board's enforced power limit (an upper bound), and why."""
    meter = NvmlMeter(nvml, handle)
    try:
        meter.joules()
    except nvml.NVMLError as err:
        limit = nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1e3
        power = StatedPower(limit, "the board's enforced power limit from NVML (an upper "
                                   "bound)")
        return StatedPowerMeter(power), f"NVML has no energy counter on this GPU ({err})"
    return meter, ""


def idle_power(meter: Meter, seconds: float) -> float | None:
    """Mean power (W) while nothing runs for `seconds`; None without a real counter."""
    if not meter.measured:
        return None
    start_j, start = meter.joules(), time.perf_counter()
    time.sleep(seconds)
    return (meter.joules() - start_j) / (time.perf_counter() - start)
