"""Frontends: model files → analog IR. `snncc.frontend.onnx` reads ONNX."""
