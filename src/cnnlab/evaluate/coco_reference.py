"""The same metrics through pycocotools itself, as the reference that `coco_map` is tested against.

The data are turned into in-memory COCO objects (image ids from 1, ground-truth ids from 1 because
COCOeval reads a match id of 0 as "unmatched", ``area = w*h``, category id = label) and scored by
``COCOeval(gt, dt, "bbox")`` with its progress printing silenced.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError

STAT_KEYS = (
    "map",
    "map50",
    "map75",
    "map_small",
    "map_medium",
    "map_large",
    "mar_1",
    "mar_10",
    "mar_100",
    "mar_small",
    "mar_medium",
    "mar_large",
)


def _rows(item: dict[str, Any], key: str, width: int | None = None) -> np.ndarray:
    value = item[key]
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value, dtype=np.float64)
    return array.reshape(-1, width) if width else array.reshape(-1)


def _xywh(boxes: np.ndarray) -> list[list[float]]:
    return [[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in boxes]


def pycocotools_map(
    predictions: Sequence[dict[str, Any]], targets: Sequence[dict[str, Any]], num_classes: int
) -> dict[str, Any]:
    """COCOeval's bbox ``stats`` and per-class AP for the same inputs as `evaluate_boxes`.

    Args:
        predictions: One dict per image: ``boxes`` [N, 4] XYXY, ``scores`` [N], ``labels`` [N].
        targets: One dict per image: ``boxes``, ``labels`` and optionally ``iscrowd``.
        num_classes: Categories 0..num_classes-1 are evaluated.

    Returns:
        The twelve ``stats`` under `STAT_KEYS`, and ``ap_per_class`` / ``ap50_per_class`` keyed by
        label (None for a class without ground truth).

    Raises:
        CnnlabError: pycocotools is not installed.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as exc:
        raise CnnlabError("the COCO reference metrics need pycocotools: pip install pycocotools") from exc

    images = [{"id": i + 1} for i in range(len(targets))]
    categories = [{"id": k, "name": str(k)} for k in range(num_classes)]
    annotations = []
    for i, target in enumerate(targets):
        boxes = _xywh(_rows(target, "boxes", 4))
        labels = _rows(target, "labels").astype(np.int64)
        crowd = _rows(target, "iscrowd").astype(np.int64) if "iscrowd" in target else np.zeros(len(labels), int)
        for box, label, is_crowd in zip(boxes, labels, crowd, strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": int(label),
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": int(is_crowd != 0),
                }
            )
    detections = []
    for i, prediction in enumerate(predictions):
        boxes = _xywh(_rows(prediction, "boxes", 4))
        for box, score, label in zip(boxes, _rows(prediction, "scores"), _rows(prediction, "labels"), strict=True):
            detections.append({"image_id": i + 1, "category_id": int(label), "bbox": box, "score": float(score)})

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "categories": categories, "annotations": annotations}
        gt.createIndex()
        if detections:
            dt = gt.loadRes(detections)
        else:  # loadRes reads anns[0]; an empty result set is built directly instead
            dt = COCO()
            dt.dataset = {"images": list(images), "categories": list(categories), "annotations": []}
            dt.createIndex()
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()

    result: dict[str, Any] = {key: float(value) for key, value in zip(STAT_KEYS, evaluator.stats, strict=True)}
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # [T, R, K] at area "all", 100 detections

    def per_class(values: np.ndarray) -> dict[int, float | None]:
        out: dict[int, float | None] = {}
        for k in range(num_classes):
            valid = values[..., k][values[..., k] > -1]
            out[k] = float(np.mean(valid)) if valid.size else None
        return out

    result["ap_per_class"] = per_class(precision)
    result["ap50_per_class"] = per_class(precision[0])
    return result
