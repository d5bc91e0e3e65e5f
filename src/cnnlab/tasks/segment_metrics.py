"""Segmentation metrics as sums that can be reduced across ranks before they are computed.

State: a K x K confusion matrix (rows: target class, columns: predicted class) over the pixels whose
target is not ``ignore_index``, and, with ``hausdorff=True``, per class the sum and count of per-item
HD95 values in mm and the count of skipped (item, class) pairs. Everything reported comes from these
sums, so a distributed evaluation gives exactly the single-process numbers.

Definitions
    IoU_k = TP / (TP + FP + FN), Dice_k = 2 TP / (2 TP + FP + FN), summed over the whole evaluation
        set (not per image). A class absent from both target and prediction has 0/0: it is reported
        as None and left out of every mean. miou / mdice average the other classes; the
        ``_foreground`` variants also leave out class 0.
    pixel_accuracy = trace / total over valid pixels.
    Boundary of a mask: its voxels with at least one face neighbour (4-connectivity in 2D,
        6-connectivity in 3D) outside the mask; outside the image counts as outside the mask.
    HD95 of two masks A, B: max(P95 of d(a, ∂B) over a in ∂A, P95 of d(b, ∂A) over b in ∂B), the
        Euclidean distance in mm (voxel spacing per axis, in the mask's axis order) between boundary
        voxels; P95 is numpy's linear-interpolated 95th percentile. It is computed per item and
        foreground class; a pair where exactly one of prediction and target is empty has no finite
        distance: it is skipped (left out of the means) and counted in ``hd95_skipped``. A pair with
        both empty (class not in the item) is neither measured nor counted. Prediction voxels under
        ignore pixels are removed before the boundaries are found.
    hd95_per_class: the mean over items of each foreground class; hd95_mm: the mean of those over
        classes that were measured at least once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cnnlab.errors import ConfigError, DataError
from cnnlab.tasks.base import all_reduce_

IGNORE_INDEX = 255


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = IGNORE_INDEX
) -> torch.Tensor:
    """The int64 [K, K] confusion matrix (rows: target, columns: prediction) on ``target``'s device.

    Args:
        pred: Predicted class ids, any shape.
        target: Class ids of the same shape; pixels equal to ``ignore_index`` are left out.
        num_classes: K.
        ignore_index: Target value that counts for nothing (None: every pixel counts).

    Raises:
        DataError: A target or predicted value outside 0..K-1 (other than ``ignore_index``).
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long().to(pred.device)
    if ignore_index is not None:
        valid = target != ignore_index
        pred, target = pred[valid], target[valid]
    if target.numel():
        for what, values in (("mask", target), ("prediction", pred)):
            low, high = torch.aminmax(values)
            if low < 0 or high >= num_classes:
                bad = int(low) if low < 0 else int(high)
                raise DataError(
                    f"{what} value {bad} is not a class id 0..{num_classes - 1} nor ignore_index={ignore_index}; "
                    "check num_classes, or map such pixels to the ignore value"
                )
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes)


def iou_dice_from_confusion(cm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class IoU and Dice (float64 [K]) from a confusion matrix; NaN for classes absent from both
    target and prediction."""
    cm = cm.double()
    tp = cm.diag()
    fp = cm.sum(dim=0) - tp
    fn = cm.sum(dim=1) - tp
    union = tp + fp + fn
    nan = torch.full_like(tp, math.nan)
    iou = torch.where(union > 0, tp / union.clamp(min=1), nan)
    dice = torch.where(union > 0, 2 * tp / (union + tp).clamp(min=1), nan)
    return iou, dice


def _as_bool_array(mask: Any) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    return np.asarray(mask, dtype=bool)


def _boundary(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    face = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=face, border_value=0)


def _hd_cropped(pred: np.ndarray, target: np.ndarray, spacing: Sequence[float], percentile: float) -> float:
    """HD of two non-empty masks already cropped to their joint bounding box plus a margin of one voxel
    (or the image border), which leaves the boundaries and the distances between them unchanged: every
    boundary voxel, hence every nearest one, lies inside the crop."""
    from scipy import ndimage

    edge_pred, edge_target = _boundary(pred), _boundary(target)
    to_target = ndimage.distance_transform_edt(~edge_target, sampling=spacing)[edge_pred]
    to_pred = ndimage.distance_transform_edt(~edge_pred, sampling=spacing)[edge_target]
    return float(max(np.percentile(to_target, percentile), np.percentile(to_pred, percentile)))


def _union_box(boxes: Sequence[tuple[slice, ...]], shape: Sequence[int], margin: int = 1) -> tuple[slice, ...]:
    return tuple(
        slice(
            max(0, min(box[axis].start for box in boxes) - margin),
            min(size, max(box[axis].stop for box in boxes) + margin),
        )
        for axis, size in enumerate(shape)
    )


def hd95(
    pred_bool: Any, target_bool: Any, spacing: Sequence[float] | None = None, *, percentile: float = 95.0
) -> float:
    """Symmetric 95th-percentile Hausdorff distance between the boundaries of two masks (module docstring).

    Args:
        pred_bool: Boolean mask [*S] (numpy or torch), 2D or 3D.
        target_bool: Boolean mask of the same shape.
        spacing: Voxel size per axis in the masks' axis order (mm); default 1.
        percentile: 100 gives the classic (maximum) Hausdorff distance.

    Returns:
        The distance; 0.0 when both masks are empty, NaN when exactly one is.
    """
    pred, target = _as_bool_array(pred_bool), _as_bool_array(target_bool)
    if pred.shape != target.shape:
        raise ValueError(f"masks differ in shape: {pred.shape} and {target.shape}")
    spacing = _check_spacing(spacing, pred.ndim)
    has_pred, has_target = pred.any(), target.any()
    if not (has_pred and has_target):
        return 0.0 if not (has_pred or has_target) else math.nan
    points = np.nonzero(pred | target)
    box = tuple(
        slice(max(0, int(p.min()) - 1), min(size, int(p.max()) + 2)) for p, size in zip(points, pred.shape, strict=True)
    )
    return _hd_cropped(pred[box], target[box], spacing, percentile)


def _check_spacing(spacing: Sequence[float] | None, dims: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * dims
    values = tuple(float(s) for s in spacing)
    if len(values) != dims or not all(math.isfinite(s) and s > 0 for s in values):
        raise ConfigError(f"spacing must be {dims} positive values (one per spatial axis), got {list(values)}")
    return values


class SegmentationMetrics:
    """IoU, Dice, pixel accuracy and optionally HD95 for semantic segmentation (module docstring).

    Args:
        num_classes: Class ids are 0..num_classes-1; class 0 is the background of the ``_foreground``
            means and HD95.
        class_names: Names for the per-class results (default: the class ids as strings).
        ignore_index: Target value of pixels that count for nothing.
        hausdorff: Also measure HD95 per item and foreground class (CPU, scipy; costs a few distance
            transforms per item).
    """

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        *,
        ignore_index: int = IGNORE_INDEX,
        hausdorff: bool = False,
    ) -> None:
        if num_classes < 1:
            raise ConfigError(f"num_classes must be at least 1, got {num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise ConfigError(f"{len(class_names)} class_names for {num_classes} classes; give one name per class")
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.ignore_index = ignore_index
        self.hausdorff = hausdorff
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.images = torch.zeros(1, dtype=torch.int64)
        self.hd_sum = torch.zeros(num_classes, dtype=torch.float64)
        self.hd_count = torch.zeros(num_classes, dtype=torch.int64)
        self.hd_skipped = torch.zeros(num_classes, dtype=torch.int64)

    @torch.no_grad()
    def update(self, outputs: torch.Tensor, targets: torch.Tensor | dict[str, Any]) -> None:
        """Add one batch.

        Args:
            outputs: Logits [B, K, *S] (argmaxed here) or predicted class ids int64 [B, *S].
            targets: ``{"masks": int64 [B, *S], "spacing": float [B, dims] or [dims] (mm)}``, or the
                masks alone (spacing 1).
        """
        if isinstance(targets, dict):
            masks, spacing = targets["masks"], targets.get("spacing")
        else:
            masks, spacing = targets, None
        masks = torch.as_tensor(masks)
        if outputs.is_floating_point():
            if outputs.dim() != masks.dim() + 1 or outputs.shape[1] != self.num_classes:
                raise ValueError(
                    f"logits {tuple(outputs.shape)} do not fit masks {tuple(masks.shape)} and "
                    f"num_classes={self.num_classes}: expected [B, {self.num_classes}, *S] with masks [B, *S]"
                )
            outputs = outputs.detach().argmax(dim=1)
        masks = masks.to(outputs.device)
        self.confusion += confusion_matrix(outputs, masks, self.num_classes, self.ignore_index).cpu()
        self.images += masks.shape[0]
        if self.hausdorff:
            self._update_hausdorff(outputs.cpu().numpy(), masks.cpu().numpy(), spacing)

    def _update_hausdorff(self, pred: np.ndarray, masks: np.ndarray, spacing: Any) -> None:
        from scipy import ndimage

        batch, dims = masks.shape[0], masks.ndim - 1
        if spacing is None:
            spacing = np.ones((batch, dims))
        spacing = np.broadcast_to(np.asarray(torch.as_tensor(spacing).cpu(), dtype=float), (batch, dims))
        foreground = self.num_classes - 1
        for item in range(batch):
            item_spacing = _check_spacing(spacing[item], dims)
            target = masks[item]
            # Prediction under ignore pixels is set to an id past the classes, so it belongs to no class.
            labels = np.where(target == self.ignore_index, self.num_classes, pred[item])
            # find_objects: one pass for the bounding boxes of labels 1..K-1 (background 0 is skipped).
            pred_boxes = ndimage.find_objects(labels, max_label=foreground) if foreground else []
            target_boxes = ndimage.find_objects(target, max_label=foreground) if foreground else []
            for k in range(1, self.num_classes):
                pred_box, target_box = pred_boxes[k - 1], target_boxes[k - 1]
                if pred_box is None and target_box is None:
                    continue
                if pred_box is None or target_box is None:
                    self.hd_skipped[k] += 1
                    continue
                box = _union_box([pred_box, target_box], target.shape)
                value = _hd_cropped(labels[box] == k, target[box] == k, item_spacing, 95.0)
                self.hd_sum[k] += value
                self.hd_count[k] += 1

    def reduce(self) -> None:
        """Sum the state across distributed ranks (no-op when not distributed); call once."""
        all_reduce_([self.confusion, self.images, self.hd_sum, self.hd_count, self.hd_skipped])

    def compute(self) -> dict[str, Any]:
        """JSON-ready results: the means, per-class values keyed by class name (None where undefined),
        and the confusion matrix."""
        total = int(self.confusion.sum())
        if total == 0:
            return {"images": int(self.images), "pixels": 0}
        iou, dice = iou_dice_from_confusion(self.confusion)
        result: dict[str, Any] = {
            "images": int(self.images),
            "pixels": total,
            "miou": _nanmean(iou),
            "mdice": _nanmean(dice),
            "miou_foreground": _nanmean(iou[1:]),
            "mdice_foreground": _nanmean(dice[1:]),
            "pixel_accuracy": float(self.confusion.diag().sum()) / total,
            "iou_per_class": self._per_class(iou),
            "dice_per_class": self._per_class(dice),
            "confusion": self.confusion.tolist(),
        }
        if self.hausdorff:
            per_class = self.hd_sum / self.hd_count.clamp(min=1)
            per_class = torch.where(self.hd_count > 0, per_class, torch.full_like(per_class, math.nan))
            per_class[0] = math.nan  # background has no HD95: it is the complement of the foreground
            result["hd95_mm"] = _nanmean(per_class)
            result["hd95_per_class"] = self._per_class(per_class, first=1)
            result["hd95_skipped"] = int(self.hd_skipped.sum())
        return result

    def _per_class(self, values: torch.Tensor, first: int = 0) -> dict[str, float | None]:
        return {self.class_names[k]: None if math.isnan(v) else v for k, v in enumerate(values.tolist()) if k >= first}


def _nanmean(values: torch.Tensor) -> float | None:
    kept = values[~values.isnan()]
    return float(kept.mean()) if kept.numel() else None
