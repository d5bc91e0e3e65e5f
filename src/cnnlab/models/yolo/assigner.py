"""Task-aligned label assignment (TOOD, Feng et al. 2021, section 3.2).

Which anchor points should learn to detect which ground-truth box? TOOD answers with the model's
own current predictions: a point is good for a box when it both classifies the box's class well and
already regresses a box that overlaps it. The alignment metric

    t = s ** alpha * u ** beta

(``s`` the predicted score of the box's class, ``u`` the IoU of the predicted box with the ground
truth) ranks the points whose centre lies inside the box; the ``topk`` best become positives. A
point claimed by several boxes keeps the one it overlaps most. The classification target of a
positive is not 1 but its normalised alignment, ``t / max(t) * max(u)`` over that box's positives,
so the best-aligned point of a box aims at that box's best IoU and the others proportionally less:
scores learn to rank boxes by localisation quality, which is what NMS and mAP reward.

alpha = 1, beta = 6 are the values the TOOD paper (and YOLOv6/v8 descriptions) use; beta that high
makes the IoU dominate once predictions start to overlap their objects.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def batched_pairwise_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """IoU of every box in ``boxes1`` [B, M, 4] with every box in ``boxes2`` [B, A, 4] (xyxy) -> [B, M, A]."""
    top_left = torch.maximum(boxes1[:, :, None, :2], boxes2[:, None, :, :2])
    bottom_right = torch.minimum(boxes1[:, :, None, 2:], boxes2[:, None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    area1 = (boxes1[..., 2:] - boxes1[..., :2]).clamp(min=0).prod(dim=-1)
    area2 = (boxes2[..., 2:] - boxes2[..., :2]).clamp(min=0).prod(dim=-1)
    return inter / (area1[:, :, None] + area2[:, None, :] - inter + eps)


def points_inside(points: torch.Tensor, boxes: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Whether each point [A, 2] lies strictly inside each box [B, M, 4] -> bool [B, M, A]."""
    x, y = points[:, 0], points[:, 1]
    x1, y1, x2, y2 = (c[..., None] for c in boxes.unbind(dim=-1))
    # pairwise minima rather than a stacked [B, M, A, 4] tensor: a quarter of the memory at 640 px
    margin = torch.minimum(torch.minimum(x - x1, y - y1), torch.minimum(x2 - x, y2 - y))
    return margin > eps


class TaskAlignedAssigner:
    """Assigns each anchor point to at most one ground-truth box, with soft, quality-aware targets.

    Background points get label ``num_classes`` (an index no class has), a zero box and zero scores;
    ``fg_mask`` is the authoritative foreground flag.
    """

    def __init__(self, topk: int = 10, alpha: float = 1.0, beta: float = 6.0, eps: float = 1e-9) -> None:
        self.topk, self.alpha, self.beta, self.eps = topk, alpha, beta, eps

    def __repr__(self) -> str:
        return f"TaskAlignedAssigner(topk={self.topk}, alpha={self.alpha}, beta={self.beta})"

    @torch.no_grad()
    def __call__(
        self,
        pred_scores: torch.Tensor,
        pred_boxes: torch.Tensor,
        anchor_points: torch.Tensor,
        gt_labels: torch.Tensor,
        gt_boxes: torch.Tensor,
        gt_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Assign targets.

        Args:
            pred_scores: [B, A, C] class probabilities (after the sigmoid).
            pred_boxes: [B, A, 4] predicted boxes, xyxy pixels.
            anchor_points: [A, 2] anchor centres, pixels.
            gt_labels: [B, M] class index of each ground truth (padding may hold anything).
            gt_boxes: [B, M, 4] ground-truth boxes, xyxy pixels.
            gt_mask: [B, M] True for real boxes, False for padding; padding is never assigned.

        Returns:
            ``target_labels`` int64 [B, A], ``target_boxes`` [B, A, 4], ``target_scores`` [B, A, C]
            (the normalised alignment on the assigned class, 0 elsewhere) and ``fg_mask`` bool [B, A].
        """
        batch, num_anchors, num_classes = pred_scores.shape
        num_gts = gt_boxes.shape[1]
        device = pred_scores.device
        if num_gts == 0:
            return (
                torch.full((batch, num_anchors), num_classes, dtype=torch.long, device=device),
                torch.zeros((batch, num_anchors, 4), device=device),
                torch.zeros((batch, num_anchors, num_classes), device=device),
                torch.zeros((batch, num_anchors), dtype=torch.bool, device=device),
            )
        # Assignment is a discrete decision; float32 keeps IoU ** 6 from underflowing under AMP.
        pred_scores, pred_boxes = pred_scores.float(), pred_boxes.float()
        gt_boxes, anchor_points = gt_boxes.float().to(device), anchor_points.float()
        gt_labels = gt_labels.long().to(device)
        valid = gt_mask.bool().to(device)

        inside = points_inside(anchor_points, gt_boxes, self.eps) & valid[..., None]  # [B, M, A]
        ious = batched_pairwise_iou(gt_boxes, pred_boxes, self.eps) * inside
        labels = gt_labels.clamp(0, num_classes - 1)  # padding may hold -1 or garbage
        class_scores = pred_scores.gather(2, labels[:, None, :].expand(batch, num_anchors, num_gts)).transpose(1, 2)
        metric = class_scores.pow(self.alpha) * ious.pow(self.beta) * inside

        # Rank only points inside the box: -1 sorts outside points last, so a box whose inside
        # points all have metric 0 (no overlap yet) still gets inside points, never outside ones.
        k = min(self.topk, num_anchors)
        top = metric.masked_fill(~inside, -1.0).topk(k, dim=-1).indices
        candidates = torch.zeros_like(inside).scatter_(-1, top, True) & inside

        # A point claimed by several boxes keeps the one its prediction overlaps most.
        best_gt = ious.masked_fill(~candidates, -1.0).argmax(dim=1)  # [B, A]
        positives = candidates & F.one_hot(best_gt, num_gts).transpose(1, 2).bool()
        fg_mask = positives.any(dim=1)

        gt_index = positives.to(torch.uint8).argmax(dim=1)  # [B, A]; 0 for background, masked below
        rows = torch.arange(batch, device=device)[:, None]
        target_labels = torch.where(fg_mask, gt_labels[rows, gt_index], torch.full_like(gt_index, num_classes))
        target_boxes = gt_boxes[rows, gt_index] * fg_mask[..., None]

        # TOOD's normalisation, per box over its own positives: t * max(u) / max(t).
        align = metric * positives
        max_align = align.amax(dim=-1, keepdim=True)
        max_iou = (ious * positives).amax(dim=-1, keepdim=True)
        # Guard only against 0 / 0: metrics are tiny early on (IoU ** 6), and an additive eps of
        # 1e-9 next to a max metric of 1e-8 would shrink every target by ten per cent.
        tiny = torch.finfo(max_align.dtype).tiny
        quality = (align * max_iou / max_align.clamp(min=tiny)).amax(dim=1)  # [B, A]
        one_hot = F.one_hot(target_labels, num_classes + 1)[..., :num_classes]
        target_scores = one_hot * quality[..., None]
        return target_labels, target_boxes, target_scores, fg_mask
