"""From raw head outputs to boxes: ``decode`` (inside the exported graph) and ``nms`` (outside it).

``decode`` is all tensor arithmetic with shapes fixed by the input size, so it exports to ONNX with a
dynamic batch and gives every runtime the same ``[B, A, 4 + C]`` tensor: ``xyxy`` pixels, then one
sigmoid score per class. Non-maximum suppression keeps a data-dependent number of boxes, so it stays
in Python (torchvision's ``batched_nms``), where each runtime's wrapper applies it after the graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cnnlab.models.yolo.anchors import dfl_expectation, dist2bbox, make_anchors

# conf/iou for mAP evaluation (keep nearly everything: the precision-recall curve needs low-score
# boxes) and for showing predictions to a person (keep only confident, well-separated boxes).
EVAL_NMS = {"conf": 0.001, "iou": 0.6}
PREDICT_NMS = {"conf": 0.25, "iou": 0.7}


def split_outputs(outputs: Sequence[torch.Tensor], reg_max: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-level head outputs to ``(box_logits [B, A, 4 * reg_max], cls_logits [B, A, C])``, levels concatenated."""
    flat = torch.cat([o.flatten(2) for o in outputs], dim=2).transpose(1, 2)
    box_logits, cls_logits = flat.split((4 * reg_max, flat.shape[-1] - 4 * reg_max), dim=-1)
    return box_logits, cls_logits


def feature_shapes(outputs: Sequence[torch.Tensor]) -> list[tuple[int, int]]:
    return [(o.shape[-2], o.shape[-1]) for o in outputs]


def decode(
    outputs: Sequence[torch.Tensor],
    *,
    strides: Sequence[int] = (8, 16, 32),
    reg_max: int = 16,
    image_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Boxes and class scores of every anchor point.

    Args:
        outputs: the head's per-level ``[B, 4 * reg_max + C, H, W]`` tensors.
        strides: the stride of each level.
        reg_max: DFL bins per box side.
        image_size: ``(height, width)`` of the input; when given, boxes are clipped to it.

    Returns:
        [B, A, 4 + C]: ``x1, y1, x2, y2`` in input pixels, then sigmoid scores.
    """
    box_logits, cls_logits = split_outputs(outputs, reg_max)
    points, point_strides = make_anchors(
        feature_shapes(outputs), strides, device=box_logits.device, dtype=box_logits.dtype
    )
    boxes = dist2bbox(dfl_expectation(box_logits, reg_max) * point_strides, points)
    if image_size is not None:
        height, width = image_size
        limit = torch.tensor([width, height, width, height], device=boxes.device, dtype=boxes.dtype)
        boxes = torch.minimum(boxes.clamp(min=0.0), limit)
    return torch.cat((boxes, cls_logits.sigmoid()), dim=-1)


def nms(
    decoded: torch.Tensor,
    *,
    conf: float = PREDICT_NMS["conf"],
    iou: float = PREDICT_NMS["iou"],
    max_det: int = 300,
    multi_label: bool = False,
    max_candidates: int = 30000,
) -> list[dict[str, torch.Tensor]]:
    """Class-wise non-maximum suppression of decoded detections, image by image.

    Args:
        decoded: [B, A, 4 + C] from :func:`decode`.
        conf: minimum class score (0.25 to show predictions, 0.001 for mAP: see ``EVAL_NMS``).
        iou: boxes of one class overlapping a better one by more than this are dropped.
        max_det: most detections kept per image, best first.
        multi_label: let one anchor give a box for every class above ``conf``, not only its best
            (a little more recall for mAP at the price of duplicates).
        max_candidates: most boxes entering NMS per image, so a low ``conf`` keeps NMS bounded.

    Returns:
        One dict per image: ``boxes`` [N, 4] xyxy pixels, ``scores`` [N], ``labels`` int64 [N].
    """
    from torchvision.ops import batched_nms

    results = []
    for det in decoded:
        boxes, scores = det[:, :4], det[:, 4:]
        if multi_label:
            anchor_idx, labels = (scores > conf).nonzero(as_tuple=True)
            boxes, best = boxes[anchor_idx], scores[anchor_idx, labels]
        else:
            best, labels = scores.max(dim=1)
            keep = best > conf
            boxes, best, labels = boxes[keep], best[keep], labels[keep]
        if best.numel() > max_candidates:
            top = best.topk(max_candidates).indices
            boxes, best, labels = boxes[top], best[top], labels[top]
        keep = batched_nms(boxes.float(), best.float(), labels, iou)[:max_det]
        results.append({"boxes": boxes[keep], "scores": best[keep], "labels": labels[keep].long()})
    return results
