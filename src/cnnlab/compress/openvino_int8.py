"""Post-training int8 for OpenVINO through NNCF, with NNCF's own accuracy control.

The float ONNX model is read by OpenVINO and quantized by NNCF on the same calibration images the
ONNX Runtime path uses. When everything-int8 loses more than ``max_drop`` on the validation split,
NNCF's accuracy-aware quantization ranks the quantized operations by the accuracy they cost and
returns them to float, most costly first, until the drop is within budget: the OpenVINO
counterpart of cnnlab's sensitivity analysis for ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import MissingDependencyError


@dataclass
class OpenVINOInt8:
    path: Path
    accuracy: float
    drop: float
    within_budget: bool
    attempts: list[dict[str, Any]] = field(default_factory=list)
    float_ops: int = 0  # operations NNCF's accuracy control returned to float


def _modules() -> tuple[Any, Any]:
    try:
        import nncf
        import openvino as ov
    except ImportError:
        raise MissingDependencyError("nncf", "compress", "int8 quantization for OpenVINO") from None
    return nncf, ov


def fake_quantize_count(model: Any) -> int:
    return sum(1 for op in model.get_ops() if op.get_type_name() == "FakeQuantize")


def quantize_for_openvino(
    float_onnx: Path,
    calibration: Sequence[np.ndarray],
    validation: Sequence[tuple[np.ndarray, np.ndarray]],
    top1: Callable[[Any, Sequence[tuple[np.ndarray, np.ndarray]]], float],
    baseline: float,
    max_drop: float,
    out: Path,
) -> OpenVINOInt8:
    """int8 OpenVINO IR at ``out`` (.xml + .bin); ``top1(compiled_model, validation)`` scores a model."""
    nncf, ov = _modules()
    model = ov.Core().read_model(str(float_onnx))
    samples = sum(len(b) for b in calibration)
    calibration_set = nncf.Dataset(list(calibration))
    quantized = nncf.quantize(model, calibration_set, subset_size=len(calibration))
    accuracy = top1(ov.compile_model(quantized, "CPU"), validation)
    attempts = [
        {"method": "nncf.quantize", "accuracy": accuracy, "drop": baseline - accuracy, "calibration_images": samples}
    ]
    float_ops = 0
    if baseline - accuracy > max_drop:
        full = fake_quantize_count(quantized)
        quantized = nncf.quantize_with_accuracy_control(
            model,
            calibration_set,
            nncf.Dataset(list(validation)),
            validation_fn=lambda compiled, data: top1(compiled, list(data)),
            max_drop=max_drop,
            drop_type=nncf.DropType.ABSOLUTE,
            subset_size=len(calibration),
        )
        accuracy = top1(ov.compile_model(quantized, "CPU"), validation)
        float_ops = max(0, full - fake_quantize_count(quantized))
        attempts.append(
            {
                "method": "nncf.quantize_with_accuracy_control",
                "accuracy": accuracy,
                "drop": baseline - accuracy,
                "quantizers_removed": float_ops,
            }
        )
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return OpenVINOInt8(out, accuracy, baseline - accuracy, baseline - accuracy <= max_drop, attempts, float_ops)


def compiled_top1(compiled: Any, data: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """Top-1 of a compiled OpenVINO classifier over (images, labels) batches."""
    correct = total = 0
    for x, y in data:
        logits = compiled(x)[0]
        correct += int((np.asarray(logits).argmax(1) == y).sum())
        total += len(y)
    return correct / max(total, 1)
