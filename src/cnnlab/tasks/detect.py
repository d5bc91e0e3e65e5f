"""Object detection through the task seam.

The contract with a detector (cnnlab's YOLO-style model, and any wrapper that follows it):
    train mode   model(images) -> raw outputs that the detector's own criterion understands
    eval mode    model(images) -> float [B, A, 4 + C]: A candidate boxes, XYXY in input pixels, then
                 C class scores in [0, 1]. This is also what the exported graph returns, so NMS and
                 everything after it are the same code for torch and for every runtime.

Targets are what ``detection_collate`` yields: one dict per image with ``boxes`` float [N, 4] XYXY in
input pixels and ``labels`` int64 [N].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from cnnlab.data.box_transforms import detection_collate
from cnnlab.errors import ConfigError

Criterion = Callable[[Any, list[dict[str, torch.Tensor]]], tuple[torch.Tensor, dict[str, torch.Tensor]]]

EVAL_CONF = 0.001  # COCO protocol: keep nearly everything, the precision-recall curve decides
PREDICT_CONF = 0.25  # what a person wants drawn on an image
NMS_IOU = 0.6
MAX_DET = 300


def select_boxes(
    decoded: torch.Tensor, *, conf: float = EVAL_CONF, iou: float = NMS_IOU, max_det: int = MAX_DET
) -> list[dict[str, torch.Tensor]]:
    """Per image: the best class of each candidate above ``conf``, class-wise NMS, the top ``max_det``."""
    from torchvision.ops import batched_nms

    if decoded.dim() != 3 or decoded.shape[-1] < 5:
        raise ConfigError(f"a detector's output must be [batch, boxes, 4 + classes], got {list(decoded.shape)}")
    found = []
    for image in decoded.detach().float():
        boxes, class_scores = image[:, :4], image[:, 4:]
        scores, labels = class_scores.max(dim=1)
        keep = scores > conf
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        kept = batched_nms(boxes, scores, labels, iou)[:max_det]
        found.append({"boxes": boxes[kept].cpu(), "scores": scores[kept].cpu(), "labels": labels[kept].cpu()})
    return found


class _SelectedMetrics:
    """Runs NMS on each batch of raw detector outputs before the COCO accumulator sees it."""

    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics

    def update(self, outputs: torch.Tensor, targets: list[dict[str, Any]]) -> None:
        self.metrics.update(select_boxes(outputs), targets)

    def reduce(self) -> None:
        self.metrics.reduce()

    def compute(self) -> dict[str, Any]:
        return self.metrics.compute()


class DetectTask:
    name = "detect"
    primary_metric = "map"  # COCO mAP@[.5:.95]: rewards boxes that are tight, not just roughly placed
    greater_is_better = True

    def __init__(
        self, num_classes: int, class_names: Sequence[str] | None = None, *, criterion: Criterion | None = None
    ):
        if num_classes < 1:
            raise ConfigError(f"detection needs at least 1 class, the data has {num_classes}")
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.criterion = criterion
        self.last_parts: dict[str, float] = {}

    def loss(self, outputs: Any, targets: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        if self.criterion is None:
            raise ConfigError("this detection task was built for evaluation only; it has no training criterion")
        total, parts = self.criterion(outputs, targets)
        self.last_parts = {k: float(v) for k, v in parts.items()}
        return total

    def new_metrics(self) -> _SelectedMetrics:
        from cnnlab.tasks.detect_metrics import DetectionMetrics

        return _SelectedMetrics(DetectionMetrics(self.num_classes, self.class_names))

    def collate(self, samples: Sequence[Any]) -> tuple[torch.Tensor, list[dict[str, Any]]]:
        return detection_collate(samples)

    def batch_transform(self) -> None:
        return None  # mixup/cutmix do not apply to boxes; mosaic is a data transform

    def predict(self, outputs: torch.Tensor, top_k: int = 5, conf: float = PREDICT_CONF) -> list[dict[str, Any]]:
        """Detections above ``conf`` per image, boxes in input pixels (``restore`` maps them to the
        original image). ``top_k`` is classification's; detections are limited by conf and MAX_DET."""
        return [
            {
                "detections": [
                    {
                        "label": self.class_names[int(label)],
                        "index": int(label),
                        "score": round(float(score), 4),
                        "box": [round(float(v), 2) for v in box],
                    }
                    for box, score, label in zip(found["boxes"], found["scores"], found["labels"], strict=True)
                ]
            }
            for found in select_boxes(outputs, conf=conf, max_det=MAX_DET)
        ]

    def agreement(self, reference: torch.Tensor, candidate: torch.Tensor, min_iou: float = 0.99) -> dict[str, Any]:
        """Do two runtimes draw the same boxes? Per image, after the same NMS at the predict threshold:
        the same number of boxes, each matched (same class, highest IoU) with IoU >= ``min_iou``."""
        from torchvision.ops import box_iou

        same_count, ious, images = 0, [], 0
        for ours, theirs in zip(
            select_boxes(reference, conf=PREDICT_CONF), select_boxes(candidate, conf=PREDICT_CONF), strict=True
        ):
            images += 1
            same_count += len(ours["boxes"]) == len(theirs["boxes"])
            if len(ours["boxes"]) and len(theirs["boxes"]):
                overlap = box_iou(ours["boxes"], theirs["boxes"])
                overlap[ours["labels"][:, None] != theirs["labels"][None, :]] = 0.0
                ious += overlap.max(dim=1).values.tolist()
            elif len(ours["boxes"]):
                ious += [0.0] * len(ours["boxes"])
        worst = min(ious) if ious else 1.0
        return {
            "images_with_same_count": f"{same_count}/{images}",
            "boxes_compared": len(ious),
            "min_matched_iou": round(worst, 6),
            "passed": same_count == images and worst >= min_iou,
        }

    def restore(self, prediction: dict[str, Any], original_hw: Sequence[int], input_size: Sequence[int]) -> dict:
        """The prediction with its boxes in the original image's pixels (the letterbox undone)."""
        from cnnlab.data.box_transforms import unletterbox_boxes

        detections = prediction["detections"]
        if not detections:
            return {**prediction, "image_size": list(original_hw)}
        boxes = unletterbox_boxes(torch.tensor([d["box"] for d in detections]), original_hw, int(input_size[-1]))
        moved = [{**d, "box": [round(float(v), 2) for v in box]} for d, box in zip(detections, boxes, strict=True)]
        return {**prediction, "detections": moved, "image_size": list(original_hw)}

    def describe(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "num_classes": self.num_classes,
            "eval_conf": EVAL_CONF,
            "nms_iou": NMS_IOU,
            "max_det": MAX_DET,
            "nms": "outside the graph: the model returns [batch, boxes, 4 + classes]; NMS is shared post-processing",
        }
