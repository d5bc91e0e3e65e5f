"""Detection metrics (COCO mAP) as an accumulator behind the task seam.

Unlike classification, COCO AP is not a sum that can be reduced: it ranks every detection of a class
across the whole evaluation set. So the state is the per-image boxes themselves (small: after NMS, at
most a few hundred boxes per image), moved to CPU numpy on `update`, gathered from every rank on
`reduce`, and scored once by `cnnlab.evaluate.coco_map.evaluate_boxes` on `compute`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cnnlab.evaluate.coco_map import evaluate_boxes


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _keep(item: dict[str, Any], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {key: _to_numpy(item[key]) for key in keys if key in item}


class DetectionMetrics:
    """COCO bbox metrics over post-processed detections.

    Args:
        num_classes: Labels are 0..num_classes-1.
        class_names: Names for the per-class results (default: the label numbers as strings).
        max_dets: COCO's detection cap per image and class.
    """

    def __init__(self, num_classes: int, class_names: Sequence[str] | None = None, max_dets: int = 100) -> None:
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.max_dets = max_dets
        self.predictions: list[dict[str, np.ndarray]] = []
        self.targets: list[dict[str, np.ndarray]] = []

    def update(self, predictions: Sequence[dict[str, Any]], targets: Sequence[dict[str, Any]]) -> None:
        """Add one batch.

        Args:
            predictions: Per image ``{"boxes": [N, 4] XYXY, "scores": [N], "labels": [N]}`` after NMS.
            targets: Per image ``{"boxes": [M, 4] XYXY, "labels": [M]}``, optionally ``"iscrowd"``;
                other keys are dropped.
        """
        if len(predictions) != len(targets):
            raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets in one batch")
        self.predictions.extend(_keep(p, ("boxes", "scores", "labels")) for p in predictions)
        self.targets.extend(_keep(t, ("boxes", "labels", "iscrowd")) for t in targets)

    def reduce(self) -> None:
        """Collect every rank's images on every rank (no-op when not distributed); call once."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return
        # Variable-length lists of arrays: all_gather_object pickles them, which tensors of fixed shape
        # could not hold. The cost is one pickle of the boxes per rank, once per evaluation.
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, (self.predictions, self.targets))
        self.predictions = [p for rank_predictions, _ in gathered for p in rank_predictions]
        self.targets = [t for _, rank_targets in gathered for t in rank_targets]

    def compute(self) -> dict[str, Any]:
        """COCO summary metrics, ``images`` (the count), and per-class AP keyed by class name."""
        if not self.targets:
            return {"images": 0}
        result = evaluate_boxes(self.predictions, self.targets, self.num_classes, max_dets=self.max_dets)
        for key in ("ap_per_class", "ap50_per_class"):
            result[key] = {self.class_names[k]: value for k, value in result[key].items()}
        return {"images": len(self.targets), **result}
