"""Rate-aware training in PyTorch: a percentile firing-rate regularizer and Loihi's rate curve.

An ANN's ReLU activations are read as firing rates through one fixed scale
(rate = activation * ``rate_scale_hz``). The regularizer keeps a high percentile of each
layer's rates inside a band the chip handles well (after keras-spiking's ``Percentile``
regularizer, as used by Patel et al. 2021 for their Loihi U-Net). :class:`LoihiRateReLU`
makes the forward pass produce the rates a Loihi neuron actually reaches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType

import torch
from torch import Tensor, nn


def percentile(x: Tensor, q: float) -> Tensor:
    """The q-th percentile (0..100) of all elements of ``x``, differentiable.

    Uses linear interpolation between order statistics, like ``numpy.percentile``'s
    default. The two order statistics come from ``topk`` taken from the nearer end, which
    for high percentiles such as 99.9 is several times faster than ``kthvalue`` or
    ``torch.quantile`` (the regularizer runs it on every layer at every step).
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    flat = x.reshape(-1)
    n = flat.numel()
    if n == 0:
        raise ValueError("percentile of an empty tensor")
    pos = q / 100.0 * (n - 1)
    below = min(math.floor(pos), n - 1)  # 0-based ascending rank of the lower statistic
    frac = pos - below
    from_top = n - below  # the lower statistic is the from_top-th largest element
    if from_top <= n // 2:
        top = torch.topk(flat, from_top).values  # descending
        low, high = top[-1], top[-2] if frac > 0.0 else top[-1]
    else:
        bottom = torch.topk(flat, min(below + 2, n), largest=False).values  # ascending
        low, high = bottom[below], bottom[below + 1] if frac > 0.0 else bottom[below]
    return low + frac * (high - low)


@dataclass(frozen=True)
class RateTarget:
    """Settings of the percentile firing-rate regularizer.

    The defaults keep the 99.9th-percentile rate of every layer at 100-250 Hz, for Loihi at
    dt = 1 ms (see docs/training.md): fast enough that rates are readable within ~100
    timesteps, slow enough that Loihi's staircase rate curve stays within ~20 % of linear.
    """

    percentile: float = 99.9
    lo_hz: float = 100.0
    hi_hz: float = 250.0
    weight: float = 1e-5
    rate_scale_hz: float = 250.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.percentile <= 100.0:
            raise ValueError(f"percentile must be in [0, 100], got {self.percentile}")
        if not 0.0 <= self.lo_hz <= self.hi_hz:
            raise ValueError(f"need 0 <= lo_hz <= hi_hz, got {self.lo_hz}, {self.hi_hz}")
        if self.weight < 0.0 or self.rate_scale_hz <= 0.0:
            raise ValueError("weight must be >= 0 and rate_scale_hz > 0")


def percentile_rate_loss(activations: Iterable[Tensor], target: RateTarget) -> Tensor:
    """``weight * sum_layers (relu(lo - p) + relu(p - hi))**2`` with p the layer's
    q-th-percentile rate in Hz; one tensor per layer in ``activations``."""
    terms = []
    for act in activations:
        rate = percentile(act, target.percentile) * target.rate_scale_hz
        terms.append((torch.relu(target.lo_hz - rate) + torch.relu(rate - target.hi_hz)) ** 2)
    if not terms:
        raise ValueError("no activations to regularize")
    return target.weight * torch.stack(terms).sum()


class LoihiRateReLU(nn.Module):
    """ReLU whose forward pass gives the rate a Loihi neuron reaches, in activation units.

    A Loihi neuron with input J (threshold units per step) resets to zero and spikes at most
    once per step, so it fires every ceil(1/J) steps: rate 1/ceil(1/J) per step, not J.
    Here J = a * rate_scale_hz * dt. The staircase has zero gradient almost everywhere, so
    the backward pass uses the smooth curve J / (1 + J/2) (the staircase averaged over where
    1/J falls within a step), whose slope 1/(1 + J/2)**2 is 1 at low rates and shrinks
    towards saturation.
    """

    def __init__(self, rate_scale_hz: float = 250.0, dt: float = 0.001) -> None:
        super().__init__()
        if rate_scale_hz <= 0.0 or dt <= 0.0:
            raise ValueError("rate_scale_hz and dt must be positive")
        self.rate_scale_hz = rate_scale_hz
        self.dt = dt

    @property
    def step_scale(self) -> float:
        """Input per timestep (threshold units) of a unit activation."""
        return self.rate_scale_hz * self.dt

    def forward(self, a: Tensor) -> Tensor:
        j = torch.relu(a) * self.step_scale
        # J = 0 gives 1/ceil(inf) = 0: silent neurons need no special case.
        hard = torch.reciprocal(torch.ceil(torch.reciprocal(j)))
        soft = j / (1.0 + 0.5 * j)
        return (soft + (hard - soft).detach()) / self.step_scale

    def extra_repr(self) -> str:
        return f"rate_scale_hz={self.rate_scale_hz}, dt={self.dt}"


RATE_MODULES: tuple[type[nn.Module], ...] = (nn.ReLU, LoihiRateReLU)


def rate_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every ReLU-like module of ``model`` with its qualified name, in registration order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, RATE_MODULES)]


def replace_rate_modules(model: nn.Module, factory: Callable[[], nn.Module]) -> list[str]:
    """Replace every ReLU-like module of ``model`` in place by ``factory()``; return names."""
    names = [name for name, _ in rate_modules(model)]
    if "" in names:
        raise ValueError("the model itself is an activation; wrap it in a container")
    for name in names:
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name), attr, factory())
    return names


def to_loihi_rate(model: nn.Module, rate_scale_hz: float, dt: float = 0.001) -> list[str]:
    """Swap every activation of ``model`` for :class:`LoihiRateReLU` (in place)."""
    return replace_rate_modules(model, lambda: LoihiRateReLU(rate_scale_hz, dt))


def to_plain_relu(model: nn.Module) -> list[str]:
    """Swap every activation of ``model`` back to ``nn.ReLU`` (in place), e.g. for export."""
    return replace_rate_modules(model, nn.ReLU)


class ActivationCapture:
    """Forward hooks keeping the latest output of every ReLU-like module, by module name.

    Each module must run once per forward pass (a reused module would overwrite its own
    output). Use as a context manager, or call :meth:`remove` to detach the hooks.
    """

    def __init__(self, model: nn.Module) -> None:
        self.outputs: dict[str, Tensor] = {}
        modules = rate_modules(model)
        if not modules:
            raise ValueError("model has no nn.ReLU / LoihiRateReLU modules")
        self.names = [name for name, _ in modules]
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in modules]

    def _hook(self, name: str) -> Callable[[nn.Module, tuple[Tensor, ...], Tensor], None]:
        def store(_module: nn.Module, _inputs: tuple[Tensor, ...], output: Tensor) -> None:
            self.outputs[name] = output

        return store

    def latest(self) -> list[Tensor]:
        """Outputs of the last forward pass in module order; all modules must have run."""
        missing = [n for n in self.names if n not in self.outputs]
        if missing:
            raise RuntimeError(f"no output captured for {missing}")
        return [self.outputs[n] for n in self.names]

    def remove(self) -> None:
        """Detach the hooks and drop the stored outputs."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.outputs.clear()

    def __enter__(self) -> ActivationCapture:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()


class PercentileRateRegularizer(ActivationCapture):
    """Percentile firing-rate regularizer over all ReLU-like modules of a model.

    Run the model's forward pass, then add :meth:`loss` to the task loss. Create it after
    any :func:`to_loihi_rate` / :func:`to_plain_relu` swap: hooks stay on the old modules.
    """

    def __init__(self, model: nn.Module, target: RateTarget | None = None) -> None:
        super().__init__(model)
        self.target = target if target is not None else RateTarget()

    def loss(self) -> Tensor:
        """Regularization loss of the last forward pass."""
        return percentile_rate_loss(self.latest(), self.target)

    @torch.no_grad()
    def percentile_rates_hz(self) -> dict[str, float]:
        """Each layer's q-th-percentile rate (Hz) in the last forward pass."""
        q, scale = self.target.percentile, self.target.rate_scale_hz
        acts = self.latest()
        return {n: float(percentile(a, q)) * scale for n, a in zip(self.names, acts, strict=True)}
