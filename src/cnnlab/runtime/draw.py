"""Detections drawn on images: one colour per class, the label and score above each box."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

# Distinct, colour-blind-friendly hues (Okabe-Ito), cycled over class indices.
PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167)]


def draw_detections(image: np.ndarray | Image.Image, detections: Sequence[dict[str, Any]]) -> Image.Image:
    """A copy of ``image`` (HxWx3 uint8 or PIL) with each detection's box, label and score drawn."""
    canvas = (image if isinstance(image, Image.Image) else Image.fromarray(image)).convert("RGB").copy()
    pen = ImageDraw.Draw(canvas)
    width = max(1, round(max(canvas.size) / 300))
    for found in detections:
        colour = PALETTE[int(found["index"]) % len(PALETTE)]
        x1, y1, x2, y2 = found["box"]
        pen.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        text = f"{found['label']} {found['score']:.2f}"
        left, top, right, bottom = pen.textbbox((x1, y1), text)
        lift = bottom - top + 2
        pen.rectangle([x1, max(0, y1 - lift), x1 + right - left + 4, max(lift, y1)], fill=colour)
        pen.text((x1 + 2, max(0, y1 - lift)), text, fill=(0, 0, 0))
    return canvas


def save_drawn(results: Sequence[dict[str, Any]], out_dir: str | Path) -> None:
    """Write each image of ``results`` (from Predictor.predict on files) with its detections drawn into
    ``out_dir``; the path goes into the result as ``drawn``."""
    from cnnlab.data.images import load_image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for i, result in enumerate(results):
        if "error" in result or "detections" not in result:
            continue
        source = Path(result["input"])
        pixels = load_image(source).permute(1, 2, 0).numpy() if source.is_file() else None
        if pixels is None:
            continue
        if pixels.shape[2] == 1:
            pixels = np.repeat(pixels, 3, axis=2)
        target = out / f"{i:04d}_{source.stem}.png"
        draw_detections(pixels, result["detections"]).save(target)
        result["drawn"] = str(target)
