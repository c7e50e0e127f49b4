"""Figures of an evaluation (`snncc eval --plots DIR`), drawn with matplotlib's Agg backend:

- `examples.png`: input, ground truth, ANN and SNN foreground maps side by side;
- `accuracy_vs_timesteps.png`: SNN pixel accuracy at each swept T, the ANN's as a line;
- `rate_histograms.png`: per layer, the histogram of its neurons' firing rates.

Each has a title, labelled axes (with units), a legend or colour bar, and a caption naming
the model, the simulator mode and T.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.evaluate.compare import Evaluation


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def caption(summary: dict[str, Any], model: str) -> str:
    """Model, simulator mode, T and what was scored, for a figure's foot."""
    scored = (f"{summary['crops_per_image']} random crop(s) per image"
              if summary["crops_per_image"] else
              f"whole images, overlap-tiled (margin {summary['margin']} px)")
    return (f"{model}; SNN on the numpy simulator, {summary['mode']} mode, "
            f"T = {summary['timesteps']} steps of {1000 * summary['dt']:g} ms; {scored}; "
            f"{summary['decision']}")


def _row_label(name: str) -> str:
    """'20#1' (crop 1 of image 20) → 'image 20\ncrop 1'; '20' → 'image 20'."""
    image, _, crop = name.partition("#")
    return f"image {image}" + (f"\ncrop {int(crop) + 1}" if crop else "")


def plot_examples(path: Path, ev: Evaluation, model: str, count: int = 4) -> None:
    """A row per image: input, ground truth, ANN and SNN foreground probabilities (0..1)."""
    plt = _pyplot()
    n = min(count, len(ev.images))
    fig, axes = plt.subplots(n, 4, figsize=(8.6, 2 * n + 1.0), squeeze=False)
    columns = ("input (gray level)", "ground truth", "ANN",
               f"SNN (T = {ev.summary['timesteps']})")
    image = None
    for i in range(n):
        panels = (ev.images[i], ev.labels[i], ev.ann[i], ev.snn[i])
        for j, (ax, panel) in enumerate(zip(axes[i], panels, strict=True)):
            image = ax.imshow(panel, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(columns[j], fontsize=9)
        axes[i][0].set_ylabel(_row_label(ev.summary["per_image"][i]["image"]), fontsize=8)
    fig.suptitle("foreground (white) per pixel: label, ANN and SNN", fontsize=10)
    fig.text(0.01, 0.01, caption(ev.summary, model), fontsize=6, wrap=True)
    fig.subplots_adjust(left=0.08, right=0.86, top=0.9, bottom=0.08, wspace=0.05,
                        hspace=0.08)
    fig.colorbar(image, cax=fig.add_axes((0.88, 0.2, 0.02, 0.6)),
                 label="foreground probability (label: 0 or 1)")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_sweep(path: Path, sweep: Sequence[dict[str, Any]], ann_accuracy: float,
               mode: str, foot: str) -> None:
    """SNN pixel accuracy (%) versus timesteps, with the ANN's accuracy as a reference."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    steps = [row["timesteps"] for row in sweep]
    ax.plot(steps, [100 * row["snn"]["pixel_accuracy"] for row in sweep], "o-",
            label=f"SNN ({mode})")
    ax.axhline(100 * ann_accuracy, color="k", ls="--", label="ANN")
    ax.axhline(100 * ann_accuracy - 1, color="gray", ls=":", label="ANN − 1 point")
    ax.set_xlabel("timesteps T (steps of the simulation)")
    ax.set_ylabel("pixel accuracy (%)")
    ax.set_title("SNN accuracy as it runs longer", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.text(0.01, 0.01, foot, fontsize=6, wrap=True)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_rate_histograms(path: Path, rates: dict[str, np.ndarray], resolution_hz: float,
                         foot: str) -> None:
    """One panel per layer: histogram of per-neuron firing rates (Hz) over all images; bins
    are whole multiples of `resolution_hz` (1 / run time: rates are spike counts / time)."""
    plt = _pyplot()
    cols = min(4, len(rates))
    rows = math.ceil(len(rates) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.2 * rows), squeeze=False)
    top = max(float(r.max()) for r in rates.values()) or 1.0
    width = resolution_hz * max(1, math.ceil(top / resolution_hz / 50))
    bins = np.arange(-width / 2, top + width, width)
    for ax, (name, r) in zip(axes.flat, rates.items(), strict=False):
        ax.hist(r.ravel(), bins=bins, color="tab:blue")
        ax.set_yscale("log")
        ax.set_title(f"{name}\nmean {r.mean():.1f} Hz", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(rates):]:
        ax.axis("off")
    fig.supxlabel("firing rate (Hz)", fontsize=9, x=0.75)
    fig.supylabel("neurons (log scale)", fontsize=9)
    fig.suptitle("firing rates of each layer's neurons, over all evaluated inputs", fontsize=10)
    fig.text(0.01, 0.005, foot, fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_frames(path: Path | BinaryIO, frames: dict[int, np.ndarray], model: str, steps: int,
                delay: int) -> None:
    """The foreground probability (H×W, 0..1) decoded after each number of steps, left to
    right, each panel labelled with its step count, with a colour bar and a caption saying
    that the strip starts after the readout delay."""
    plt = _pyplot()
    n = len(frames)
    fig, axes = plt.subplots(1, n, figsize=(1.9 * n + 1.2, 2.9), squeeze=False)
    image = None
    for ax, (t, frame) in zip(axes[0], frames.items(), strict=True):
        image = ax.imshow(frame, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"after {t} steps", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.subplots_adjust(left=0.01, right=0.9, top=0.8, bottom=0.1, wspace=0.05)
    fig.colorbar(image, cax=fig.add_axes((0.92, 0.15, 0.012, 0.6)),
                 label="foreground probability")
    fig.suptitle(f"prediction as the SNN converges (T = {steps})", fontsize=10)
    fig.text(0.01, 0.02, f"{model}. Frames start after the readout delay ({delay} steps: "
             "one per layer plus the synaptic filters' lag), before which no spike has reached "
             "the output.", fontsize=7)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(directory: Path, ev: Evaluation, model: str) -> list[Path]:
    """All figures of `ev` into `directory` (created if needed), captioned with `model`;
    returns their paths."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SnnccError(f"{directory}: cannot create the plot directory: {err}") from None
    foot = caption(ev.summary, model)
    written = [directory / "examples.png"]
    plot_examples(written[0], ev, model)
    if "sweep" in ev.summary:
        written.append(directory / "accuracy_vs_timesteps.png")
        plot_sweep(written[-1], ev.summary["sweep"], ev.summary["ann"]["pixel_accuracy"],
                   ev.summary["mode"], foot)
    if ev.neuron_rates_hz:
        written.append(directory / "rate_histograms.png")
        run_seconds = ev.summary["timesteps"] * ev.summary["dt"]
        plot_rate_histograms(written[-1], ev.neuron_rates_hz, 1.0 / run_seconds, foot)
    return written
