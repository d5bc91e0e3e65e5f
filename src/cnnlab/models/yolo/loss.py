"""Training loss of the YOLO-style detector: BCE on soft task-aligned targets, CIoU and DFL.

    total = box_gain * CIoU + cls_gain * BCE + dfl_gain * DFL

* Classification: binary cross-entropy of every class logit at every point against the soft,
  task-aligned targets of :class:`TaskAlignedAssigner` (0 for background), summed and divided by the
  sum of the targets, so the loss does not grow with the number of points or objects.
* Box: ``1 - CIoU`` (Zheng et al. 2020) of each foreground point's decoded box with its ground truth.
* DFL: distribution focal loss (GFL, Li et al. 2020) pushes each side's bin distribution onto the
  two bins around the true distance.

Box and DFL are weighted per point by its target score (well-aligned points matter more) and use
the same normaliser as classification. Gains box 7.5, cls 0.5, dfl 1.5 are the common choice of the
YOLOv6/v8-era recipes: the box terms sit near 1 at the start while BCE over thousands of
points is small once normalised, so the gains keep the three on a similar footing. The loss is a
per-image mean, not multiplied by the batch size; pick the learning rate accordingly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.errors import DataError
from cnnlab.models.yolo.anchors import bbox2dist, dfl_expectation, dist2bbox, make_anchors
from cnnlab.models.yolo.assigner import TaskAlignedAssigner
from cnnlab.models.yolo.postprocess import feature_shapes, split_outputs


def complete_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """CIoU of matching box pairs (Zheng et al. 2020, eq. 9-11): IoU minus centre-distance and aspect terms.

    Args:
        boxes1: [..., 4] xyxy, the predictions.
        boxes2: [..., 4] xyxy, the targets.
        eps: keeps the divisions finite for empty boxes.

    Returns:
        [...] values in (-1.5, 1]; 1 for identical boxes.
    """
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    gx1, gy1, gx2, gy2 = boxes2.unbind(dim=-1)
    w1, h1 = (x2 - x1).clamp(min=0), (y2 - y1).clamp(min=0)
    w2, h2 = (gx2 - gx1).clamp(min=0), (gy2 - gy1).clamp(min=0)
    inter = (torch.minimum(x2, gx2) - torch.maximum(x1, gx1)).clamp(min=0) * (
        torch.minimum(y2, gy2) - torch.maximum(y1, gy1)
    ).clamp(min=0)
    iou = inter / (w1 * h1 + w2 * h2 - inter + eps)
    # rho^2 / c^2: squared centre distance over the squared diagonal of the smallest enclosing box
    enclose_w = torch.maximum(x2, gx2) - torch.minimum(x1, gx1)
    enclose_h = torch.maximum(y2, gy2) - torch.minimum(y1, gy1)
    diagonal = enclose_w**2 + enclose_h**2 + eps
    centre = ((x1 + x2 - gx1 - gx2) ** 2 + (y1 + y2 - gy1 - gy2) ** 2) / 4
    aspect = (4 / math.pi**2) * (torch.atan(w2 / (h2 + eps)) - torch.atan(w1 / (h1 + eps))) ** 2
    # alpha is a trade-off weight, not something to optimise: the paper's gradient treats it as constant.
    with torch.no_grad():
        alpha = aspect / (aspect - iou + 1 + eps)
    return iou - centre / diagonal - alpha * aspect


def distribution_focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """DFL (GFL, Li et al. 2020, eq. 6): cross-entropy towards the two bins around a continuous target.

    For a target ``y`` between bins ``i = floor(y)`` and ``i + 1`` the loss is
    ``-((i + 1 - y) * log p_i + (y - i) * log p_{i+1})``: it is minimal when the distribution puts
    exactly those weights on those two bins, whose expectation is then ``y``.

    Args:
        logits: [N, reg_max] unnormalised bin scores.
        target: [N] distances in bins, in ``[0, reg_max - 1)``.

    Returns:
        [N] losses.
    """
    left = target.floor().long()
    right = left + 1
    weight_left = right.to(target.dtype) - target
    return F.cross_entropy(logits, left, reduction="none") * weight_left + F.cross_entropy(
        logits, right, reduction="none"
    ) * (1 - weight_left)


def pad_targets(
    targets: Sequence[dict[str, Any]], num_classes: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image ``{"boxes", "labels"}`` dicts to padded ``labels`` [B, M], ``boxes`` [B, M, 4], ``mask`` [B, M]."""
    boxes = [torch.as_tensor(t["boxes"]).as_subclass(torch.Tensor).reshape(-1, 4) for t in targets]
    labels = [torch.as_tensor(t["labels"]).as_subclass(torch.Tensor).reshape(-1) for t in targets]
    for i, (b, lab) in enumerate(zip(boxes, labels, strict=True)):
        if len(b) != len(lab):
            raise DataError(f"target {i} has {len(b)} boxes but {len(lab)} labels; each box needs one label")
        if len(lab) and (int(lab.min()) < 0 or int(lab.max()) >= num_classes):
            raise DataError(
                f"target {i} has labels {int(lab.min())}..{int(lab.max())}, but the detector has {num_classes} "
                f"classes (0..{num_classes - 1}); check the dataset's class list or build with more classes"
            )
    most = max((len(b) for b in boxes), default=0)
    padded_labels = torch.zeros((len(targets), most), dtype=torch.long, device=device)
    padded_boxes = torch.zeros((len(targets), most, 4), device=device)
    mask = torch.zeros((len(targets), most), dtype=torch.bool, device=device)
    for i, (b, lab) in enumerate(zip(boxes, labels, strict=True)):
        n = len(b)
        padded_boxes[i, :n] = b.to(device=device, dtype=torch.float32)
        padded_labels[i, :n] = lab.to(device=device, dtype=torch.long)
        mask[i, :n] = True
    return padded_labels, padded_boxes, mask


class DetectionLoss:
    """Loss of :class:`YoloDetector`'s training-mode outputs against per-image targets.

    Call it as ``total, parts = loss(outputs, targets)`` with ``outputs`` the per-level raw tensors
    the detector returns in training mode and ``targets`` a list of ``{"boxes": [N, 4] xyxy px,
    "labels": int64 [N]}``, one per image. ``parts`` holds the unweighted ``box``, ``cls`` and
    ``dfl`` terms (detached) and ``num_fg``, the number of foreground points.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        strides: Sequence[int] = (8, 16, 32),
        reg_max: int = 16,
        box_gain: float = 7.5,
        cls_gain: float = 0.5,
        dfl_gain: float = 1.5,
        assigner: TaskAlignedAssigner | None = None,
    ) -> None:
        self.num_classes, self.strides, self.reg_max = num_classes, tuple(strides), reg_max
        self.box_gain, self.cls_gain, self.dfl_gain = box_gain, cls_gain, dfl_gain
        self.assigner = assigner or TaskAlignedAssigner(topk=10, alpha=1.0, beta=6.0)

    def __call__(
        self, outputs: Sequence[torch.Tensor], targets: Sequence[dict[str, Any]]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if len(targets) != outputs[0].shape[0]:
            raise DataError(f"{len(targets)} targets for a batch of {outputs[0].shape[0]} images; give one per image")
        box_logits, cls_logits = split_outputs(outputs, self.reg_max)
        box_logits, cls_logits = box_logits.float(), cls_logits.float()
        points, strides = make_anchors(feature_shapes(outputs), self.strides, device=box_logits.device)
        grid_points = points / strides
        pred_boxes = dist2bbox(dfl_expectation(box_logits, self.reg_max), grid_points) * strides

        gt_labels, gt_boxes, gt_mask = pad_targets(targets, self.num_classes, box_logits.device)
        _, target_boxes, target_scores, fg = self.assigner(
            cls_logits.detach().sigmoid(), pred_boxes.detach(), points, gt_labels, gt_boxes, gt_mask
        )
        normaliser = target_scores.sum().clamp(min=1.0)
        cls_loss = F.binary_cross_entropy_with_logits(cls_logits, target_scores, reduction="sum") / normaliser

        weight = target_scores.sum(dim=-1)[fg]
        box_loss = ((1.0 - complete_iou(pred_boxes[fg], target_boxes[fg])) * weight).sum() / normaliser
        # DFL works in strides; targets stop just short of the last bin so its right neighbour exists.
        target_dist = bbox2dist(grid_points, target_boxes / strides, max_dist=self.reg_max - 1 - 0.01)
        dfl = distribution_focal_loss(box_logits[fg].reshape(-1, self.reg_max), target_dist[fg].reshape(-1))
        dfl_loss = (dfl.reshape(-1, 4).mean(dim=-1) * weight).sum() / normaliser

        total = self.box_gain * box_loss + self.cls_gain * cls_loss + self.dfl_gain * dfl_loss
        parts = {
            "box": box_loss.detach(),
            "cls": cls_loss.detach(),
            "dfl": dfl_loss.detach(),
            "num_fg": fg.sum().detach(),
        }
        return total, parts
