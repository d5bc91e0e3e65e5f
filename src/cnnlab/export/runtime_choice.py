"""Which runtime serves an exported model fastest, among those proven to agree with it.

Candidates: torch eager, ONNX Runtime, OpenVINO f32, OpenVINO bf16 (only where the CPU has bf16
units), TFLite. Each candidate runs the parity batch: f32 candidates must meet the f32 tolerance;
a bf16 candidate must stay within the bf16 tolerance (bf16 keeps about 3 significant digits) and
agree on every top-1 label the trained model has decided (top-2 margin above the tolerance). Dense
tasks also hold every candidate to what they draw, as the export's parity does: detection the same
boxes after NMS, segmentation the same argmax class on >= 99.9% of the pixels.
Then every candidate is timed at batch 1, alternating rounds, and the fastest that passed is
recommended: `cnnlab predict RUN` and `load_predictor(RUN)` use it. A faster candidate that failed
is still timed and reported, so the report says what refusing it costs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.export.parity import compare, decided_agreement, judged_elementwise, reference_outputs
from cnnlab.profile.latency import alternating_medians
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
    accepted: bool = False  # verified, or bf16 taken on the user's word (--precision bf16) though it was not

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRECISIONS = ("auto", "f32", "bf16")


def _candidates(artifacts: dict[str, Path], precision: str) -> list[tuple[str, str, Path | None]]:
    found: list[tuple[str, str, Path | None]] = [("torch", "f32", None)]
    if "onnx" in artifacts:
        found.append(("onnxruntime", "f32", artifacts["onnx"]))
    if "openvino" in artifacts:
        found.append(("openvino", "f32", artifacts["openvino"]))
        if precision != "f32" and openvino_has_bf16():
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
    precision: str = "auto",
) -> tuple[list[Candidate], Candidate]:
    """Verify and time every candidate; returns all candidates and the recommended one.

    ``precision``: ``auto`` serves bf16 only where it was verified; ``f32`` never bf16; ``bf16`` takes
    bf16 even where it moved the outputs past the tolerance (what OpenVINO does by default on CPUs with
    bf16 units): the candidate stays unverified in the report, with its measured differences.
    """
    from cnnlab.tasks import task_for_card

    task_check = getattr(task_for_card(card), "agreement", None)
    with torch.inference_mode():
        reference = reference_outputs(model, batch)
    runners: dict[int, Any] = {}
    candidates: list[Candidate] = []
    for runtime, wanted, path in _candidates(artifacts, precision):
        if path is None:
            predictor_run, output = (lambda x: reference_outputs(model, x)), reference
        else:
            predictor = artifact_predictor(path, card, precision=wanted)
            predictor_run, output = predictor.run, predictor.run(batch)
        max_diff, _, agreement, tolerance = compare(reference, output, BF16_RTOL if wanted == "bf16" else rtol)
        drawn = task_check(reference, output) if task_check is not None else None
        passed = (
            (max_diff <= tolerance or not judged_elementwise(model, drawn))
            and (drawn is None or drawn["passed"])
            and (wanted == "f32" or decided_agreement(reference, output, tolerance) == 1.0)
        )
        where = str(path) if path else None
        accepted = passed or (wanted == "bf16" and precision == "bf16")
        candidates.append(
            Candidate(
                runtime, wanted, where, max_diff, agreement, tolerance, passed, task_agreement=drawn, accepted=accepted
            )
        )
        runners[len(candidates) - 1] = predictor_run
    single = batch[:1]
    with torch.inference_mode():
        timed = alternating_medians(
            {str(i): (lambda run=run: run(single)) for i, run in runners.items()}, rounds=rounds, runs=runs
        )
    for i, stats in timed.items():
        candidates[int(i)].median_ms = stats.median_ms
    best = min((c for c in candidates if c.accepted), key=lambda c: c.median_ms)
    return candidates, best
