"""COCO bounding-box mAP, vectorised, giving exactly the numbers pycocotools' ``COCOeval(..., "bbox")`` gives.

The protocol, stage by stage (every choice below is COCO's, kept so that results are comparable):

1. Per image and category, detections are ordered by score, highest first, with ties kept in input
   order (a stable sort), and only the first ``max_dets`` are kept. The cap is per image *and
   category*, as in pycocotools, not per image.
2. IoU has no "+1" on widths. A crowd ground truth divides the intersection by the detection's own
   area, so any detection inside a crowd region overlaps it fully.
3. Greedy matching at each IoU threshold .50:.05:.95: a detection takes the still-free ground truth
   with the highest IoU >= threshold, preferring ground truths that are not ignored (ties go to the
   later ground truth). Crowd ground truths never become taken and may absorb many detections.
4. For each area range (all, small < 32², medium, large > 96², bounds inclusive on both sides) the
   ground truths whose w*h falls outside it are ignored; a detection matched to an ignored ground
   truth is ignored, and so is an unmatched detection whose own w*h falls outside the range.
5. Per category and area range, the detections of all images are ordered by score (ties by image,
   then by rank in the image); precision is made non-increasing from the right and read at the 101
   recall points 0:.01:1 (first point whose recall reaches the threshold; 0 past the last one).
   Categories without a non-ignored ground truth get -1 and are left out of every mean.

Matching is inherently sequential within one image, so the loop runs over detection *rank* while
every (image, category) group, area range and IoU threshold advances in lockstep as array operations.
All arithmetic is float64 in the same order as pycocotools, so even IoUs that land exactly on a
threshold decide the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cnnlab.errors import ConfigError, DataError

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # linspace, not arange: 0.75 must compare equal to 0.75
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
AREA_RANGES = ((0.0, 1e10), (0.0, 32.0**2), (32.0**2, 96.0**2), (96.0**2, 1e10))
AREA_NAMES = ("all", "small", "medium", "large")
_GROUPS_PER_CHUNK = 512  # bounds the padded [groups, dets, gts] IoU block; similar sizes share a chunk


def _numpy(value: Any, dtype: type, shape_tail: tuple[int, ...] = ()) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype).reshape(-1, *shape_tail)


def xyxy_to_xywh(boxes: Any) -> np.ndarray:
    """Corner boxes as COCO's [x, y, width, height], in float64 (the precision pycocotools computes in)."""
    xyxy = _numpy(boxes, np.float64, (4,))
    return np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)


def _check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{where} has label {int(labels.min() if labels.min() < 0 else labels.max())} but num_classes is "
            f"{num_classes}; labels must be 0..{num_classes - 1}"
        )


def _flatten(
    images: Sequence[dict[str, Any]], num_classes: int, kind: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image index, label, xywh box, score-or-crowd) of every box, concatenated over images."""
    image, label, box, extra = [], [], [], []
    for i, item in enumerate(images):
        boxes = xyxy_to_xywh(item["boxes"])
        labels = _numpy(item["labels"], np.int64)
        _check_labels(labels, num_classes, f"{kind} of image {i}")
        if kind == "predictions":
            value = _numpy(item["scores"], np.float64)
        else:
            crowd = item.get("iscrowd")
            value = np.zeros(len(labels), bool) if crowd is None else _numpy(crowd, np.int64) != 0
        if not len(boxes) == len(labels) == len(value):
            raise DataError(f"{kind} of image {i}: boxes, labels and scores/iscrowd differ in length")
        image.append(np.full(len(labels), i, np.int64))
        label.append(labels)
        box.append(boxes)
        extra.append(value)
    if not image:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0)
    return np.concatenate(image), np.concatenate(label), np.concatenate(box), np.concatenate(extra)


def box_iou(dets: np.ndarray, gts: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of xywh boxes, broadcast over leading dimensions, exactly as pycocotools' C code computes it.

    Args:
        dets: Detection boxes [..., 4] xywh.
        gts: Ground-truth boxes [..., 4] xywh, broadcastable against ``dets``.
        crowd: Crowd flags broadcastable to the result; a crowd box uses the detection's area as the union.

    Returns:
        The IoU, 0 where the boxes do not overlap.
    """
    # x + w (rather than the original x2) because that is the right edge pycocotools sees.
    w = np.minimum(dets[..., 0] + dets[..., 2], gts[..., 0] + gts[..., 2]) - np.maximum(dets[..., 0], gts[..., 0])
    h = np.minimum(dets[..., 1] + dets[..., 3], gts[..., 1] + gts[..., 3]) - np.maximum(dets[..., 1], gts[..., 1])
    inter = w * h
    det_area = dets[..., 2] * dets[..., 3]
    union = np.where(crowd, det_area, det_area + gts[..., 2] * gts[..., 3] - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((w > 0) & (h > 0), inter / np.where(union == 0, 1.0, union), 0.0)


def _out_of_range(area: np.ndarray) -> np.ndarray:
    """[A, N] True where an area lies outside each COCO area range (bounds are inclusive)."""
    lo, hi = np.array(AREA_RANGES).T
    return (area[None] < lo[:, None]) | (area[None] > hi[:, None])


def _segments(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique values of a sorted key array with where each run starts and how long it is."""
    return np.unique(keys, return_index=True, return_counts=True)


def _match_chunk(
    iou: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray, det_count: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching for a chunk of (image, category) groups sorted by detection count, descending.

    Args:
        iou: [C, D, G] IoU, rank-ordered detections against ground truths; -1 marks padding.
        gt_ignore: [C, A, G] ground truth ignored in each area range.
        gt_crowd: [C, G] crowd flags.
        det_count: [C] real detections per group (non-increasing).

    Returns:
        ``matched`` and ``matched_ignored`` as [C, A, T, D]: whether a detection found a ground truth at
        each threshold, and whether that ground truth was an ignored one.
    """
    groups, dets, gts = iou.shape
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[:, None]  # COCO's cap; only bites for a threshold of 1
    shape = (groups, len(AREA_RANGES), len(IOU_THRESHOLDS))
    taken = np.zeros((*shape, gts), bool)
    matched = np.zeros((*shape, dets), bool)
    matched_ignored = np.zeros((*shape, dets), bool)
    active = np.searchsorted(-det_count, -np.arange(dets), side="left")  # groups that have a det at each rank
    reuse = gt_crowd[:, None, None, :]
    for rank in range(dets):
        n = active[rank]
        current = iou[:n, rank][:, None, None, :]  # [n, 1, 1, G]
        candidate = (current >= thresholds) & (~taken[:n] | reuse[:n])  # [n, A, T, G]
        ignored = gt_ignore[:n, :, None, :]
        regular = candidate & ~ignored
        # Ignored ground truths are only a fallback: a regular match, however weak, wins.
        usable = np.where(regular.any(-1, keepdims=True), regular, candidate)
        value = np.where(usable, current, -np.inf)
        best = usable & (value == value.max(-1, keepdims=True))
        choice = gts - 1 - np.argmax(best[..., ::-1], axis=-1)  # the last of equal IoUs, as COCO's scan keeps
        found = usable.any(-1)
        g, a, t = np.nonzero(found)
        taken[g, a, t, choice[g, a, t]] = True
        matched[:n, :, :, rank] = found
        matched_ignored[:n, :, :, rank] = found & np.take_along_axis(gt_ignore[:n], choice, axis=-1)
    return matched, matched_ignored


def _match(
    det_key: np.ndarray,
    det_box: np.ndarray,
    gt_key: np.ndarray,
    gt_box: np.ndarray,
    gt_crowd: np.ndarray,
    gt_out: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per detection [A, T, N]: whether it matched a ground truth, and whether that one is ignored.

    Both inputs are sorted by group key (image * K + category); detections in rank order within a group.
    """
    matched = np.zeros((len(AREA_RANGES), len(IOU_THRESHOLDS), len(det_key)), bool)
    matched_ignored = np.zeros_like(matched)
    d_keys, d_start, d_count = _segments(det_key)
    g_keys, g_start, g_count = _segments(gt_key)
    _, d_pos, g_pos = np.intersect1d(d_keys, g_keys, assume_unique=True, return_indices=True)
    order = np.argsort(-d_count[d_pos], kind="stable")
    d_start, d_count = d_start[d_pos][order], d_count[d_pos][order]
    g_start, g_count = g_start[g_pos][order], g_count[g_pos][order]
    gt_ignore = gt_crowd[None] | gt_out  # [A, Ngt]
    for lo in range(0, len(d_start), _GROUPS_PER_CHUNK):
        part = slice(lo, lo + _GROUPS_PER_CHUNK)
        dn, gn = d_count[part], g_count[part]
        d_valid = np.arange(dn.max()) < dn[:, None]
        g_valid = np.arange(gn.max()) < gn[:, None]
        d_idx = np.where(d_valid, d_start[part, None] + np.arange(dn.max()), 0)
        g_idx = np.where(g_valid, g_start[part, None] + np.arange(gn.max()), 0)
        crowd = gt_crowd[g_idx]
        iou = box_iou(det_box[d_idx][:, :, None], gt_box[g_idx][:, None], crowd[:, None])
        iou = np.where(g_valid[:, None], iou, -1.0)  # padding can never reach a threshold
        hit, hit_ignored = _match_chunk(iou, gt_ignore[:, g_idx].transpose(1, 0, 2), crowd, dn)
        c, r = np.nonzero(d_valid)
        matched[:, :, d_idx[c, r]] = hit[c, :, :, r].transpose(1, 2, 0)
        matched_ignored[:, :, d_idx[c, r]] = hit_ignored[c, :, :, r].transpose(1, 2, 0)
    return matched, matched_ignored


def _precision_recall(tp_flags: np.ndarray, fp_flags: np.ndarray, npig: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated precision [rows, R] and final recall [rows] for score-ordered tp/fp flag rows."""
    rows, n = tp_flags.shape
    tp = np.cumsum(tp_flags, axis=1)
    fp = np.cumsum(fp_flags, axis=1)
    # Same float64 operations and order as pycocotools; eps keeps 0/0 at the head of a curve at 0.
    recall = tp / npig
    precision = tp / (fp + tp + np.spacing(1))
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    # searchsorted(recall, r, "left") per row without a Python loop: recall is fl(tp / npig), which
    # is monotone in the integer tp, so "recall >= r" is "tp >= need[r]" and integer keys offset by
    # row stay exactly sorted in one flat array.
    need = np.searchsorted(np.arange(npig + 1) / npig, RECALL_THRESHOLDS, side="left")
    stride = npig + 2
    offset = np.arange(rows)[:, None] * stride
    first = np.searchsorted((tp + offset).ravel(), (need[None] + offset).ravel(), side="left")
    first = first.reshape(rows, -1) - np.arange(rows)[:, None] * n
    interpolated = np.where(first < n, np.take_along_axis(precision, np.minimum(first, n - 1), axis=1), 0.0)
    return interpolated, recall[:, -1]


def _accumulate(
    det_cat: np.ndarray,
    det_score: np.ndarray,
    det_rank: np.ndarray,
    det_out: np.ndarray,
    matched: np.ndarray,
    ignored: np.ndarray,
    npig: np.ndarray,
    max_dets: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """COCO's ``precision`` [T, R, K, A, M] and ``recall`` [T, K, A, M] arrays (-1 where a category has no gt)."""
    num_classes = npig.shape[0]
    t_n, r_n, a_n, m_n = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(AREA_RANGES), len(max_dets)
    precision = -np.ones((t_n, r_n, num_classes, a_n, m_n))
    recall = -np.ones((t_n, num_classes, a_n, m_n))
    # Detections arrive ordered by (image, category, rank); a stable sort keeps that order among equal scores.
    order = np.lexsort((-det_score, det_cat))
    cat, rank = det_cat[order], det_rank[order]
    matched, ignored, det_out = matched[..., order], ignored[..., order], det_out[:, order]
    bounds = np.searchsorted(cat, np.arange(num_classes + 1))
    within = rank[None] < np.asarray(max_dets)[:, None]  # [M, N]
    for k in range(num_classes):
        part = slice(bounds[k], bounds[k + 1])
        n = bounds[k + 1] - bounds[k]
        for a in range(a_n):
            if npig[k, a] == 0:
                continue
            if n == 0:
                precision[:, :, k, a] = 0.0
                recall[:, k, a] = 0.0
                continue
            hit = matched[a, :, part]
            # Unmatched detections outside the area range do not count against precision.
            skip = ignored[a, :, part] | (~hit & det_out[a, part])
            # A detection past max_dets is kept as a neutral entry (neither tp nor fp): it repeats the
            # previous point of the curve, which changes neither the interpolation nor the final recall.
            counted = within[:, None, part] & ~skip[None]  # [M, T, n]
            tp = (counted & hit[None]).reshape(m_n * t_n, n)
            fp = (counted & ~hit[None]).reshape(m_n * t_n, n)
            interpolated, final = _precision_recall(tp, fp, int(npig[k, a]))
            precision[:, :, k, a, :] = interpolated.reshape(m_n, t_n, r_n).transpose(1, 2, 0)
            recall[:, k, a, :] = final.reshape(m_n, t_n).T
    return precision, recall


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def summarize(precision: np.ndarray, recall: np.ndarray, max_dets: Sequence[int]) -> dict[str, Any]:
    """COCO's twelve summary numbers and per-class AP from the ``precision``/``recall`` arrays.

    Args:
        precision: [T, R, K, A, M] as pycocotools' ``eval["precision"]``.
        recall: [T, K, A, M] as pycocotools' ``eval["recall"]``.
        max_dets: The M detection caps, ascending (COCO: 1, 10, 100).

    Returns:
        Means over valid entries (-1 when there are none, as in COCOeval's ``stats``), plus
        ``ap_per_class`` and ``ap50_per_class`` keyed by category index, None without ground truth.
    """
    t50, t75 = int(np.argmax(IOU_THRESHOLDS == 0.5)), int(np.argmax(IOU_THRESHOLDS == 0.75))
    top = len(max_dets) - 1
    result: dict[str, Any] = {
        "map": _mean_valid(precision[:, :, :, 0, top]),
        "map50": _mean_valid(precision[t50, :, :, 0, top]),
        "map75": _mean_valid(precision[t75, :, :, 0, top]),
    }
    for a, name in enumerate(AREA_NAMES[1:], start=1):
        result[f"map_{name}"] = _mean_valid(precision[:, :, :, a, top])
    for m, cap in enumerate(max_dets):
        result[f"mar_{cap}"] = _mean_valid(recall[:, :, 0, m])
    for a, name in enumerate(AREA_NAMES[1:], start=1):
        result[f"mar_{name}"] = _mean_valid(recall[:, :, a, top])

    def per_class(values: np.ndarray) -> dict[int, float | None]:
        means = {k: _mean_valid(values[..., k]) for k in range(values.shape[-1])}
        return {k: (None if v == -1.0 else v) for k, v in means.items()}

    result["ap_per_class"] = per_class(precision[:, :, :, 0, top])
    result["ap50_per_class"] = per_class(precision[t50, :, :, 0, top])
    return result


def evaluate_boxes(
    predictions: Sequence[dict[str, Any]],
    targets: Sequence[dict[str, Any]],
    num_classes: int,
    max_dets: int = 100,
) -> dict[str, Any]:
    """COCO bbox metrics of ``predictions`` against ``targets``, equal to pycocotools' ``COCOeval``.

    Args:
        predictions: One dict per image: ``boxes`` [N, 4] XYXY pixels, ``scores`` [N], ``labels`` [N]
            (numpy arrays, tensors or lists).
        targets: One dict per image, same order: ``boxes``, ``labels`` and optionally ``iscrowd``.
        num_classes: Labels are 0..num_classes-1; a class with no ground truth reports None.
        max_dets: The largest detection cap, applied per image and category (COCO: 100).

    Returns:
        ``map`` (AP@[.5:.95]), ``map50``, ``map75``, ``map_small``/``medium``/``large``, ``mar_1``,
        ``mar_10``, ``mar_{max_dets}``, ``mar_small``/``medium``/``large`` (-1 where nothing is
        measurable, as in COCOeval), and ``ap_per_class`` / ``ap50_per_class`` keyed by label.

    Raises:
        DataError: The two lists differ in length, or a label is outside 0..num_classes-1.
        ConfigError: ``max_dets`` is below 10.
    """
    if len(predictions) != len(targets):
        raise DataError(f"{len(predictions)} prediction entries for {len(targets)} images; pass one per image")
    if max_dets < 10:
        raise ConfigError(f"max_dets={max_dets}: COCO also reports recall at 1 and 10 detections; use 10 or more")
    caps = (1, 10, max_dets)
    d_img, d_cat, d_box, d_score = _flatten(predictions, num_classes, "predictions")
    g_img, g_cat, g_box, g_crowd = _flatten(targets, num_classes, "targets")
    g_crowd = g_crowd.astype(bool)

    # Ground truths by group, keeping their order; detections by group, then score (stable), capped.
    g_key = g_img * num_classes + g_cat
    g_order = np.argsort(g_key, kind="stable")
    g_key, g_box, g_crowd, g_cat = g_key[g_order], g_box[g_order], g_crowd[g_order], g_cat[g_order]
    d_order = np.lexsort((-d_score, d_cat, d_img))
    d_key = (d_img * num_classes + d_cat)[d_order]
    d_box, d_score, d_cat = d_box[d_order], d_score[d_order], d_cat[d_order]
    _, start, count = _segments(d_key)
    d_rank = np.arange(len(d_key)) - np.repeat(start, count)
    keep = d_rank < caps[-1]
    d_key, d_box, d_score, d_cat, d_rank = d_key[keep], d_box[keep], d_score[keep], d_cat[keep], d_rank[keep]

    g_out = _out_of_range(g_box[:, 2] * g_box[:, 3])
    d_out = _out_of_range(d_box[:, 2] * d_box[:, 3])
    matched, matched_ignored = _match(d_key, d_box, g_key, g_box, g_crowd, g_out)
    counted_gt = ~(g_crowd[None] | g_out)  # [A, Ngt]
    npig = np.stack([np.bincount(g_cat[row], minlength=num_classes) for row in counted_gt], axis=1)
    precision, recall = _accumulate(d_cat, d_score, d_rank, d_out, matched, matched_ignored, npig, caps)
    return summarize(precision, recall, caps)
