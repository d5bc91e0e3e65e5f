"""Box statistics of a detection split, as `cnnlab data info` prints them: how many objects per
image, how large they are (COCO's small / medium / large, by area in pixels), and their shapes."""

from __future__ import annotations

from typing import Any

import numpy as np

SMALL, MEDIUM = 32**2, 96**2  # COCO's area thresholds


def box_statistics(split: Any) -> dict[str, Any]:
    """Counts and size percentiles of the boxes in ``split`` (a DetectionSplit)."""
    records = split.records
    per_image = np.array([len(r.labels) for r in records], dtype=np.int64)
    boxes = [r.boxes for r in records if len(r.boxes)]
    if not boxes:
        return {"boxes": 0, "images_without_boxes": int(len(records))}
    stacked = np.concatenate(boxes).astype(np.float64)
    width, height = stacked[:, 2] - stacked[:, 0], stacked[:, 3] - stacked[:, 1]
    area = width * height
    side = np.sqrt(area)

    def percentiles(values: np.ndarray) -> dict[str, float]:
        p5, p50, p95 = np.percentile(values, [5, 50, 95])
        return {"p5": round(float(p5), 2), "median": round(float(p50), 2), "p95": round(float(p95), 2)}

    return {
        "boxes": int(len(stacked)),
        "per_image": {"mean": round(float(per_image.mean()), 2), "max": int(per_image.max())},
        "images_without_boxes": int((per_image == 0).sum()),
        "sqrt_area_px": percentiles(side),
        "aspect_w_over_h": percentiles(width / np.maximum(height, 1e-9)),
        "by_size": {
            "small": int((area <= SMALL).sum()),
            "medium": int(((area > SMALL) & (area <= MEDIUM)).sum()),
            "large": int((area > MEDIUM).sum()),
        },
    }
