"""snncc: a compiler from trained ANNs (ONNX) to spiking neural networks for Loihi."""

__version__ = "0.1.0"
__all__ = ["__version__"]
