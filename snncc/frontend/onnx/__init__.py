"""The ONNX frontend: `import_onnx(path)` → analog IR (see docs/frontend.md)."""

from snncc.frontend.onnx.errors import OnnxImportError, OnnxImportWarning, UnsupportedModelError
from snncc.frontend.onnx.importer import import_onnx

__all__ = ["OnnxImportError", "OnnxImportWarning", "UnsupportedModelError", "import_onnx"]
