"""Spike messages between chips, estimated from a placed IR and measured per-layer spikes.

On Loihi a spike leaves its core once for every core that holds one of its targets. After
`tile-cores` and `partition-chips` each population carries `block_shape` (one block per
core) and `chips` (the chip of each block, row-major block order). For every projection
from a placed population into a placed population, this module counts, block pair by block
pair, how many source neurons reach the target block (convolutions connect separably along
channels, rows and columns), and spreads the layer's measured spike count evenly over its
neurons. The result is the number of spike messages per image and the share that crosses
chips. Projections from or to an unplaced population (the host-side input, a readout
without blocks, or a graph without placement) count one message per spike, within a chip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from snncc.ir.graph import Graph
from snncc.ir.op import Op
from snncc.ir.ops import IF, LIF, Conv2d, ConvTranspose2d, Readout, SpikeInput
from snncc.passes.fuse_linear import VIEWS

SOURCES = (SpikeInput, IF, LIF)
TARGETS = (IF, LIF, Readout)


@dataclass(frozen=True)
class ChipTraffic:
    """Spike messages per image: all of them and those between chips; `chips` is how many
    chips the placement uses (0 when the graph carries no placement)."""

    messages: float
    interchip_messages: float
    chips: int

    @property
    def placed(self) -> bool:
        return self.chips > 0

    @property
    def interchip_fraction(self) -> float:
        return self.interchip_messages / self.messages if self.messages > 0 else 0.0


def _source(op: Op) -> Op | None:
    """The population a synapse op reads, looking through views (flatten, reshape)."""
    src = op.inputs[0].owner if op.inputs else None
    while isinstance(src, VIEWS):
        src = src.inputs[0].owner
    return src if isinstance(src, SOURCES) else None


def _axis_hits(n_in: int, n_out: int, b_in: int, b_out: int, hit: np.ndarray) -> np.ndarray:
    """Block-level counts along one axis: entry (i, j) is how many positions of source block i
    reach at least one position of target block j; `hit` is the position-level n_in×n_out
    boolean connectivity."""
    out_blocks = -(-n_out // b_out)
    per_block = np.stack([hit[:, j * b_out:(j + 1) * b_out].any(axis=1)
                          for j in range(out_blocks)], axis=1)
    in_blocks = -(-n_in // b_in)
    return np.stack([per_block[i * b_in:(i + 1) * b_in].sum(axis=0) for i in range(in_blocks)])


def _spatial(op: Op, kernel: int, axis: int, n_in: int, n_out: int) -> np.ndarray:
    """n_in×n_out: does input position i feed output position o along `axis` (0 rows, 1 cols)?"""
    a = op.attrs
    s, p = a.strides[axis], a.pads[axis]
    taps = np.arange(kernel) * a.dilations[axis]
    hit = np.zeros((n_in, n_out), bool)
    if isinstance(op, Conv2d):
        for o in range(n_out):
            i = o * s - p + taps
            hit[i[(i >= 0) & (i < n_in)], o] = True
    else:
        for i in range(n_in):
            o = i * s - p + taps
            hit[i, o[(o >= 0) & (o < n_out)]] = True
    return hit


def _channels(groups: int, c_in: int, c_out: int) -> np.ndarray:
    return (np.arange(c_in)[:, None] // (c_in // groups)) \
        == (np.arange(c_out)[None, :] // (c_out // groups))


def _block_sizes(shape: tuple[int, ...], block: tuple[int, ...]) -> np.ndarray:
    """Neurons in each block, row-major block order."""
    sizes = np.ones(1)
    for n, b in zip(shape, block, strict=True):
        sizes = np.multiply.outer(sizes, np.minimum(b, n - np.arange(-(-n // b)) * b)).ravel()
    return sizes


def block_links(graph: Graph, syn: Op, src: Op, dst: Op) -> np.ndarray:
    """Source blocks × target blocks: source neurons of each block that reach each target
    block through `syn` (all of them for anything but a 2-D convolution on C×H×W)."""
    s_shape, d_shape = src.result.type.shape[1:], dst.result.type.shape[1:]
    s_block, d_block = src.attrs.block_shape, dst.attrs.block_shape
    if not (isinstance(syn, (Conv2d, ConvTranspose2d)) and syn.inputs[0].owner is src
            and len(s_shape) == len(d_shape) == 3):
        sizes = _block_sizes(s_shape, s_block)
        return np.repeat(sizes[:, None], len(_block_sizes(d_shape, d_block)), axis=1)
    kernel = graph.weights[syn.attrs.weight].shape[2:]
    links = _axis_hits(s_shape[0], d_shape[0], s_block[0], d_block[0],
                       _channels(syn.attrs.groups, s_shape[0], d_shape[0]))
    for axis in (0, 1):
        hit = _spatial(syn, kernel[axis], axis, s_shape[1 + axis], d_shape[1 + axis])
        links = np.kron(links, _axis_hits(s_shape[1 + axis], d_shape[1 + axis],
                                          s_block[1 + axis], d_block[1 + axis], hit))
    return links.astype(float)


def chip_traffic(graph: Graph, spikes: Mapping[str, float]) -> ChipTraffic:
    """Spike messages per image given each population's spike count per image (`spikes`)."""
    placed = [op for op in graph.ops if isinstance(op, TARGETS) and op.attrs.chips]
    chips = len({c for op in placed for c in op.attrs.chips})
    messages = inter = 0.0
    for syn in graph.ops:
        users = [u for u in graph.users(syn.result) if isinstance(u, TARGETS)]
        src = _source(syn) if users else None
        if src is None:
            continue
        count, dst = spikes.get(src.result.name, 0.0), users[0]
        if not (isinstance(src, (IF, LIF)) and src.attrs.chips and dst.attrs.chips):
            messages += count
            continue
        per_neuron = count / int(np.prod(src.result.type.shape[1:]))
        links = block_links(graph, syn, src, dst)
        cross = np.not_equal.outer(np.asarray(src.attrs.chips), np.asarray(dst.attrs.chips))
        messages += per_neuron * float(links.sum())
        inter += per_neuron * float(links[cross].sum())
    return ChipTraffic(messages, inter, chips)
