"""Anchor points and the distance <-> box conversions of anchor-free detectors.

An anchor-free head (FCOS, YOLOX, YOLOv6/v8) predicts, at every cell of every level, the distances
from the cell centre to the four sides of a box. The "anchor" is just that centre: one point per
cell, no prior boxes. Centres sit at ``(j + 0.5, i + 0.5) * stride`` pixels, so on a 160 px input
the stride-8 level has 20 x 20 points from 4 px to 156 px.

Conventions used throughout ``cnnlab.models.yolo``: boxes are ``xyxy``; distances are ``ltrb``
(left, top, right, bottom), non-negative, in the same unit as the points they are measured from.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def make_anchors(
    feature_shapes: Sequence[tuple[int, int]],
    strides: Sequence[int],
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres of every level in pixels, levels concatenated shallow to deep.

    Args:
        feature_shapes: ``(height, width)`` of each level's feature map.
        strides: the downsampling factor of each level (8, 16, 32).
        device: where to build the tensors.
        dtype: their floating type.

    Returns:
        ``points`` [A, 2] as ``(x, y)`` pixels and ``stride`` [A, 1], with
        ``A = sum(h * w)``; row-major per level, matching ``feature.flatten(2)``.
    """
    if len(feature_shapes) != len(strides):
        raise ValueError(f"{len(feature_shapes)} feature shapes but {len(strides)} strides")
    points, point_strides = [], []
    for (height, width), stride in zip(feature_shapes, strides, strict=True):
        ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) * stride
        xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) * stride
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((grid_x, grid_y), dim=-1).reshape(-1, 2))
        point_strides.append(torch.full((height * width, 1), float(stride), device=device, dtype=dtype))
    return torch.cat(points), torch.cat(point_strides)


def dist2bbox(distance: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``ltrb`` distances from ``points`` to an ``xyxy`` box.

    Args:
        distance: [..., 4] left, top, right, bottom distances.
        points: [..., 2] ``(x, y)`` points, broadcastable against ``distance``.

    Returns:
        [..., 4] ``xyxy`` boxes in the unit of the inputs.
    """
    left_top, right_bottom = distance.chunk(2, dim=-1)
    return torch.cat((points - left_top, points + right_bottom), dim=-1)


def bbox2dist(points: torch.Tensor, boxes: torch.Tensor, max_dist: float | None = None) -> torch.Tensor:
    """``xyxy`` boxes to ``ltrb`` distances from ``points``: the inverse of :func:`dist2bbox`.

    Args:
        points: [..., 2] ``(x, y)`` points.
        boxes: [..., 4] ``xyxy`` boxes.
        max_dist: when given, distances are clamped to ``[0, max_dist]``. DFL needs its targets
            strictly inside the bin range (``reg_max - 1 - 0.01``) so both neighbouring bins exist.

    Returns:
        [..., 4] distances.
    """
    distance = torch.cat((points - boxes[..., :2], boxes[..., 2:] - points), dim=-1)
    if max_dist is not None:
        distance = distance.clamp(0.0, max_dist)
    return distance


def dfl_expectation(logits: torch.Tensor, reg_max: int) -> torch.Tensor:
    """Expected distance of each side under its discretised distribution (GFL, Li et al. 2020).

    Args:
        logits: [..., 4 * reg_max] unnormalised bin scores, four sides after each other.
        reg_max: number of bins; bin ``k`` stands for distance ``k`` (in strides).

    Returns:
        [..., 4] distances in strides, each in ``[0, reg_max - 1]``.
    """
    probs = logits.unflatten(-1, (4, reg_max)).softmax(dim=-1)
    bins = torch.arange(reg_max, device=logits.device, dtype=probs.dtype)
    return (probs * bins).sum(dim=-1)
