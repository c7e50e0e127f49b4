"""Picture of a placement: blocks on the network's layer layout, coloured by chip."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snncc.hw.loihi.blockgraph import BlockGraph
from snncc.hw.loihi.placement import Placement


def layout(graph: BlockGraph) -> np.ndarray:
    """(x, y) per block: x = layer index (order of first appearance when only names are
    known), y = rank within the layer by (row, col), scaled to [0, 1]."""
    layer_keys: dict[object, int] = {}
    for b in graph.blocks:
        key = b.layer_index if b.layer_index is not None else b.layer
        layer_keys.setdefault(key, len(layer_keys))
    members: dict[object, list[int]] = {}
    for i, b in enumerate(graph.blocks):
        members.setdefault(b.layer_index if b.layer_index is not None else b.layer, []).append(i)
    xy = np.zeros((len(graph.blocks), 2))
    for key, idx in members.items():
        x = key if isinstance(key, (int, np.integer)) else layer_keys[key]
        ranked = sorted(idx, key=lambda i: (graph.blocks[i].position or (0.0, 0.0), i))
        for r, i in enumerate(ranked):
            xy[i] = (x, (r + 0.5) / len(ranked))
    return xy


def plot_placement(graph: BlockGraph, placement: Placement, path: str | Path,
                   edges: bool = True, caption: str = "") -> None:
    """Write a PNG of the placement to `path`: a legend names each chip's colour and its
    cores; with `edges`, connections are drawn with width ∝ traffic, red where they cross
    chips. `caption` (model, T) goes at the foot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    xy = layout(graph)
    chip_of = placement.chip_of()
    chips = np.array([chip_of[b.name] for b in graph.blocks])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * (np.ptp(xy[:, 0]) + 2)) + 2.5, 6.0), dpi=120)
    if edges and graph.edges:
        idx = graph.index()
        seg, width, cross = [], [], []
        for (s, d), w in graph.edges.items():
            if s != d and w > 0:
                seg.append((xy[idx[s]], xy[idx[d]]))
                width.append(w)
                cross.append(chip_of[s] != chip_of[d])
        if seg:
            lw = 0.1 + 2.0 * np.asarray(width) / max(width)
            colours = np.where(np.array(cross)[:, None], [[0.85, 0.1, 0.1, 0.6]],
                               [[0.5, 0.5, 0.5, 0.25]])
            ax.add_collection(LineCollection(seg, linewidths=lw, colors=colours, zorder=1))
    cmap = plt.get_cmap("tab20" if placement.chips > 10 else "tab10")
    sizes = 12.0 * np.array([b.cores for b in graph.blocks]) ** 0.5
    ax.scatter(xy[:, 0], xy[:, 1], c=[cmap(c % cmap.N) for c in chips], s=sizes,
               edgecolors="black", linewidths=0.2, zorder=2)
    names: dict[float, str] = {}
    for (x, _), b in zip(xy, graph.blocks, strict=True):
        names.setdefault(float(x), str(b.layer))
    ax.set_xticks(list(names), list(names.values()), rotation=60, ha="right", fontsize=7)
    cores = np.bincount(chips, weights=[b.cores for b in graph.blocks],
                        minlength=placement.chips)
    handles = [Line2D([], [], ls="", marker="o", markerfacecolor=cmap(c % cmap.N),
                      markeredgecolor="black", label=f"chip {c} ({cores[c]:.0f} cores)")
               for c in range(placement.chips)]
    if edges and graph.edges:
        handles += [Line2D([], [], color=(0.5, 0.5, 0.5), label="spikes within a chip"),
                    Line2D([], [], color=(0.85, 0.1, 0.1), label="spikes between chips")]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1),
              title="marker area ∝ cores", title_fontsize=7)
    ax.set_xlabel("layer")
    ax.set_ylabel("block's position within its layer (row-major, 0–1)")
    ax.set_title(f"{len(graph.blocks)} blocks on {placement.chips} chips: "
                 f"{placement.interchip_spikes_per_step:.4g} inter-chip spikes/step "
                 f"({100 * placement.interchip_fraction:.1f}% of traffic)", fontsize=10)
    ax.autoscale_view()
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=7)
    fig.tight_layout(rect=(0, 0.03 if caption else 0, 1, 1))
    fig.savefig(path)
    plt.close(fig)
