"""The built-in op kinds. Importing this package registers them."""

from snncc.ir.ops import analog, encoding, sparse, spiking
from snncc.ir.ops.analog import (
    Add,
    AffineConst,
    AvgPool2d,
    BatchNorm,
    Concat,
    Conv2d,
    ConvTranspose2d,
    Dense,
    Flatten,
    Relu,
    Reshape,
    Sigmoid,
    Softmax,
    SumPool2d,
    Transpose,
    Upsample,
)
from snncc.ir.ops.encoding import SpikeInput
from snncc.ir.ops.kinds import Neurons, Population, SpikeSource, Synapse, View
from snncc.ir.ops.sparse import SparseMap
from snncc.ir.ops.spiking import IF, LIF, Readout

__all__ = [
    "IF",
    "LIF",
    "Add",
    "AffineConst",
    "AvgPool2d",
    "BatchNorm",
    "Concat",
    "Conv2d",
    "ConvTranspose2d",
    "Dense",
    "Flatten",
    "Neurons",
    "Population",
    "Readout",
    "Relu",
    "Reshape",
    "Sigmoid",
    "Softmax",
    "SparseMap",
    "SpikeInput",
    "SpikeSource",
    "SumPool2d",
    "Synapse",
    "Transpose",
    "Upsample",
    "View",
    "analog",
    "encoding",
    "sparse",
    "spiking",
]
