"""Parity: does the exported model agree with the trained one on the same inputs?

The same pre-processed batch (real images from the run's own test split when it has one) goes
through torch and through the artifact's runtime. Max and mean absolute difference of the outputs,
and top-1 agreement, are compared with a tolerance scaled to the outputs' magnitude.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from cnnlab.runtime.predictor import Predictor


@dataclass
class ParityResult:
    format: str
    runtime: str
    samples: int
    data: str
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    tolerance: float
    passed: bool
    metric_delta: dict[str, Any] | None = None
    task_agreement: dict[str, Any] | None = None  # the task's own test (detection: same boxes after NMS)
    first_divergence: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decided_agreement(reference: torch.Tensor, candidate: torch.Tensor, tolerance: float) -> float:
    """Top-1 agreement over the samples the reference has decided: where its top-2 logits are closer
    than ``tolerance`` a lower precision may legitimately pick either, so those are left out."""
    if reference.dim() != 2 or reference.shape[1] < 2:
        return 1.0
    top2 = reference.float().topk(2, dim=1).values
    decided = (top2[:, 0] - top2[:, 1]) > 2 * tolerance
    if not decided.any():
        return 1.0
    same = reference.argmax(1) == candidate.float().argmax(1)
    return same[decided].float().mean().item()


def reference_outputs(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """The trained model's outputs to hold an artifact to. A model exported one image per run is
    run one image at a time here too: torchvision's detectors batched give slightly different
    numbers than alone, which can move a box across an NMS or score threshold."""
    model.eval()
    step = getattr(model, "export_batch", None)
    if step is None:
        return model(batch)
    return torch.cat([model(batch[i : i + step]) for i in range(0, batch.shape[0], step)])


def judged_elementwise(model: nn.Module, task_agreement: dict | None) -> bool:
    """Whether raw outputs must agree element by element. Models whose raw output is already their
    kept boxes in score order (torchvision's detectors: ``unordered_outputs``) are judged on what they
    draw alone: a score moved by 1e-6 swaps two rows, or a box near the score floor comes and goes."""
    return task_agreement is None or not getattr(model, "unordered_outputs", False)


def compare(reference: torch.Tensor, candidate: torch.Tensor, rtol: float) -> tuple[float, float, float, float]:
    """(max abs diff, mean abs diff, top-1 agreement, tolerance) for two output batches."""
    reference, candidate = reference.float(), candidate.float()
    diff = (reference - candidate).abs()
    tolerance = rtol * max(1.0, reference.abs().max().item())
    agreement = (reference.argmax(1) == candidate.argmax(1)).float().mean().item() if reference.dim() == 2 else 1.0
    return diff.max().item(), diff.mean().item(), agreement, tolerance


@torch.inference_mode()
def check_parity(
    model: nn.Module, predictor: Predictor, batch: torch.Tensor, *, fmt: str, data: str, rtol: float = 1e-3
) -> ParityResult:
    reference = reference_outputs(model, batch)
    candidate = predictor.run(batch)
    max_diff, mean_diff, agreement, tolerance = compare(reference, candidate, rtol)
    task_test = getattr(predictor.task, "agreement", None)
    task_agreement = task_test(reference, candidate) if task_test is not None else None
    passed = (max_diff <= tolerance or not judged_elementwise(model, task_agreement)) and (
        task_agreement is None or task_agreement["passed"]
    )
    return ParityResult(
        fmt,
        predictor.runtime,
        batch.shape[0],
        data,
        max_diff,
        mean_diff,
        agreement,
        tolerance,
        passed,
        None,
        task_agreement,
    )


@torch.inference_mode()
def metric_delta(model: nn.Module, predictor: Predictor, batches: Any, task: Any) -> dict[str, Any]:
    """The task metric on a whole evaluation set through torch and through the artifact."""
    ours, theirs = task.new_metrics(), task.new_metrics()
    infer = getattr(task, "infer", None)  # segmentation tiles whole images the same way for both
    for inputs, targets in batches:
        if infer is not None:
            ours.update(infer(model, inputs), targets)
            theirs.update(infer(predictor.run, inputs), targets)
        else:
            ours.update(model(inputs), targets)
            theirs.update(predictor.run(inputs), targets)
    a, b = ours.compute(), theirs.compute()
    key = task.primary_metric
    return {
        "metric": key,
        "torch": a[key],
        "artifact": b[key],
        "delta": b[key] - a[key],
        "samples": a.get("samples", a.get("images")),
    }
