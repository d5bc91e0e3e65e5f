"""Cleaning the boxes of one image: every reader passes its boxes through ``clean_boxes``.

What happens to a box (in this order; the first rule that applies decides):

    a coordinate is NaN or infinite        dropped, "bad box" (not finite)
    class id outside 0 .. K-1              dropped, "bad box" (unknown class id 7 (the data declares 3))
    x2 < x1 or y2 < y1                     dropped, "bad box" (negative size)
    no overlap with the image              dropped, "bad box" (outside the image)
    under 1 px wide or high once clipped   dropped, "bad box" (zero area)
    partly outside the image               clipped and kept, "clipped box"

Overshoots of at most ``TOLERANCE`` px are clipped silently: they are rounding (a YOLO box written
with 6 decimals), not a labelling mistake.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from cnnlab.data.images import BadImageError, ImageInfo, probe_image
from cnnlab.data.skips import SkipReport

TOLERANCE = 0.01  # px
MIN_SIZE = 1.0  # px: a box must cover at least one pixel in each direction


def clean_boxes(
    boxes_xyxy: np.ndarray,
    labels: np.ndarray,
    width: int,
    height: int,
    num_classes: int,
    where: str | Sequence[str],
    skipped: SkipReport,
    *,
    file: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Clip boxes to a ``width`` x ``height`` image and drop the unusable ones (see the module docstring).

    Args:
        boxes_xyxy: ``[N, 4]`` x1, y1, x2, y2 in absolute pixels.
        labels: ``[N]`` class indices.
        width: image width in pixels.
        height: image height in pixels.
        num_classes: labels must lie in ``0 .. num_classes - 1``.
        where: where the boxes came from, for skip details: one string per box ("labels/a.txt line 4"),
            or one for all of them ("a.xml"), to which " object 3" (1-based) is appended per box.
        skipped: receives "bad box" and "clipped box" records.
        file: the file named in skip records (default: ``where`` of the box).

    Returns:
        float32 ``[M, 4]`` boxes and int64 ``[M]`` labels, M <= N, in the original order.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(boxes) != len(labels):
        raise ValueError(f"{len(boxes)} boxes but {len(labels)} labels")
    if isinstance(where, str):
        places = [f"{where} object {i + 1}" for i in range(len(boxes))]
    else:
        places = list(where)
    if len(places) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(places)} places in 'where'")

    keep = np.zeros(len(boxes), dtype=bool)
    clipped = np.clip(boxes, 0, [width, height, width, height]) if len(boxes) else boxes
    for i, (box, label) in enumerate(zip(boxes, labels, strict=True)):
        why = _problem(box, clipped[i], int(label), width, height, num_classes)
        source = file if file is not None else places[i]
        if why is not None:
            skipped.add(source, "bad box", f"{places[i]}: {why}")
            continue
        keep[i] = True
        if np.abs(clipped[i] - box).max() > TOLERANCE:
            skipped.add(source, "clipped box", f"{places[i]}: {_fmt(box)} clipped to the {width}x{height} image")
    return clipped[keep].astype(np.float32), labels[keep]


def _problem(box: np.ndarray, inside: np.ndarray, label: int, width: int, height: int, num_classes: int) -> str | None:
    """Why the box must be dropped, or None to keep it."""
    if not np.isfinite(box).all():
        return f"coordinates not finite ({_fmt(box)})"
    if not 0 <= label < num_classes:
        return f"unknown class id {label} (the data declares {num_classes})"
    x1, y1, x2, y2 = box
    if x2 < x1 or y2 < y1:
        return f"negative size ({_fmt(box)}: x2 < x1 or y2 < y1)"
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        return f"outside the image ({_fmt(box)} in a {width}x{height} image)"
    w, h = inside[2] - inside[0], inside[3] - inside[1]
    if w < MIN_SIZE - 1e-6 or h < MIN_SIZE - 1e-6:
        return f"zero area ({_fmt(box)}: {w:.4g} x {h:.4g} px inside the image, under {MIN_SIZE:g} px)"
    return None


def _fmt(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in box) + "]"


def probe_or_skip(
    path: str | os.PathLike[str], where: str, skipped: SkipReport, *, max_pixels: int
) -> ImageInfo | None:
    """``probe_image``, with a bad image counted in ``skipped`` (its reason, ``where`` in the detail) as None."""
    try:
        return probe_image(path, max_pixels=max_pixels)
    except BadImageError as exc:
        skipped.add(exc.file, exc.reason, f"{where}: {exc.detail}" if where else exc.detail)
        return None
