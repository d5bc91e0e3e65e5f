"""Export to ONNX / OpenVINO / TorchScript / TFLite, with automatic parity checks and bisection."""

from cnnlab.export.api import ExportError, ExportReport, export_model, export_run, parse_formats
from cnnlab.export.formats import FORMATS
from cnnlab.export.preflight import blocking_ops, check_exportability

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportReport",
    "blocking_ops",
    "check_exportability",
    "export_model",
    "export_run",
    "parse_formats",
]
