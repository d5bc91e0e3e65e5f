"""Compression that keeps accuracy: int8 quantization, structured pruning, distillation."""

from cnnlab.compress.api import CompressionReport, compress_run

__all__ = ["CompressionReport", "compress_run"]
