"""Which runtime serves an exported model fastest, among those proven to agree with it.

Candidates: torch eager, ONNX Runtime, OpenVINO f32, OpenVINO bf16 (only where the CPU has bf16
units), TFLite. Each candidate runs the parity batch: f32 candidates must meet the f32 tolerance;
a bf16 candidate must stay within the bf16 tolerance (bf16 keeps about 3 significant digits) and
agree on every top-1 label the trained model has decided (top-2 margin above the tolerance). Dense
tasks also hold every candidate to what they draw, as the export's parity does: detection the same
boxes after NMS, segmentation the same argmax class on >= 99.9% of the pixels.
Then the passing candidates are timed at batch 1, alternating rounds, and the fastest is
recommended: `cnnlab predict RUN` and `load_predictor(RUN)` use it.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.export.parity import compare, decided_agreement
from cnnlab.runs import ModelCard
from cnnlab.runtime.backends import artifact_predictor, openvino_has_bf16

BF16_RTOL = 3e-2


@dataclass
class Candidate:
    runtime: str
    precision: str
    artifact: str | None
    max_abs_diff: float
    top1_agreement: float
    tolerance: float
    passed: bool
    median_ms: float | None = None
    task_agreement: dict[str, Any] | None = None  # detection's boxes, segmentation's pixels

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _candidates(artifacts: dict[str, Path]) -> list[tuple[str, str, Path | None]]:
    found: list[tuple[str, str, Path | None]] = [("torch", "f32", None)]
    if "onnx" in artifacts:
        found.append(("onnxruntime", "f32", artifacts["onnx"]))
    if "openvino" in artifacts:
        found.append(("openvino", "f32", artifacts["openvino"]))
        if openvino_has_bf16():
            found.append(("openvino", "bf16", artifacts["openvino"]))
    if "tflite" in artifacts:
        found.append(("tflite", "f32", artifacts["tflite"]))
    return found


def choose_runtime(
    model: nn.Module,
    card: ModelCard,
    artifacts: dict[str, Path],
    batch: torch.Tensor,
    rtol: float = 1e-3,
    rounds: int = 8,
    runs: int = 5,
) -> tuple[list[Candidate], Candidate]:
    """Verify and time every candidate; returns all candidates and the recommended one."""
    from cnnlab.tasks import task_for_card

    task_check = getattr(task_for_card(card), "agreement", None)
    with torch.inference_mode():
        reference = model(batch)
    runners: dict[int, Any] = {}
    candidates: list[Candidate] = []
    for runtime, precision, path in _candidates(artifacts):
        if path is None:
            predictor_run, output = (lambda x: model(x)), reference
        else:
            predictor = artifact_predictor(path, card, precision=precision)
            predictor_run, output = predictor.run, predictor.run(batch)
        max_diff, _, agreement, tolerance = compare(reference, output, BF16_RTOL if precision == "bf16" else rtol)
        drawn = task_check(reference, output) if task_check is not None else None
        passed = (
            max_diff <= tolerance
            and (drawn is None or drawn["passed"])
            and (precision == "f32" or decided_agreement(reference, output, tolerance) == 1.0)
        )
        where = str(path) if path else None
        candidates.append(
            Candidate(runtime, precision, where, max_diff, agreement, tolerance, passed, task_agreement=drawn)
        )
        if passed:
            runners[len(candidates) - 1] = predictor_run
    single = batch[:1]
    samples: dict[int, list[float]] = {i: [] for i in runners}
    with torch.inference_mode():
        for run in runners.values():
            for _ in range(3):
                run(single)
        for _ in range(rounds):
            for i, run in runners.items():
                for _ in range(runs):
                    start = time.perf_counter()
                    run(single)
                    samples[i].append(time.perf_counter() - start)
    for i, values in samples.items():
        candidates[i].median_ms = statistics.median(values) * 1000
    best = min((candidates[i] for i in runners), key=lambda c: c.median_ms)
    return candidates, best
