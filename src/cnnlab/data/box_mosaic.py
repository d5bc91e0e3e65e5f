"""Mosaic augmentation for detectors (YOLOv4, Bochkovskiy et al. 2020): four training images tiled
around a random centre, then scaled back to the input size, so one sample shows four contexts and
objects at half their size. It teaches small objects and context-free recognition.

A dataset wrapper, not a transform: it needs three more images from the split. Randomness comes from
torch's global RNG, which the trainer's loader seeds per (epoch, index), so a resumed run draws the
same mosaics.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from cnnlab.data.box_transforms import PAD_VALUE, Letterbox
from cnnlab.data.transforms import MatchChannels

MIN_VISIBLE = 0.2  # a box cut down to less than this share of its area is dropped, not trained on


class Mosaic(Dataset):
    """``split`` (raw images and boxes) seen through mosaics of side ``side`` with probability ``p``,
    then ``transform`` (the usual box-aware pipeline) on the result."""

    def __init__(self, split: Any, side: int, transform: Any, p: float = 0.5) -> None:
        self.split = split.with_transform(None)
        self.side = side
        self.transform = transform
        self.p = p
        self.channels = MatchChannels(split.channels)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> Any:
        if torch.rand(()).item() >= self.p:
            return self.transform(*self.split[index])
        image, target = self.tile([index, *torch.randint(len(self.split), (3,)).tolist()])
        return self.transform(image, target)

    def tile(self, indices: list[int]) -> tuple[Any, dict[str, Any]]:
        """The mosaic of the four items at ``indices`` (top-left, top-right, bottom-left, bottom-right)."""
        s = self.side
        cx, cy = (torch.rand(2) * s + s / 2).round().int().tolist()  # the centre: 1/4 .. 3/4 of the 2s canvas
        canvas = torch.full((self.split.channels, 2 * s, 2 * s), PAD_VALUE, dtype=torch.uint8)
        boxes, labels = [], []
        fit = Letterbox(s)
        for k, index in enumerate(indices):
            image, target = fit(*self.split[index])
            image = self.channels(image)
            x0, y0 = (cx - s if k in (0, 2) else cx), (cy - s if k in (0, 1) else cy)
            left, top = max(0, -x0), max(0, -y0)  # the part of the tile that falls off the canvas
            right, bottom = min(s, 2 * s - x0), min(s, 2 * s - y0)
            canvas[:, y0 + top : y0 + bottom, x0 + left : x0 + right] = image[:, top:bottom, left:right]
            placed = target["boxes"].as_subclass(torch.Tensor) + torch.tensor([x0, y0, x0, y0])
            boxes.append(placed)
            labels.append(target["labels"])
        every = torch.cat(boxes) if boxes else torch.zeros(0, 4)
        classes = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.int64)
        area = (every[:, 2] - every[:, 0]) * (every[:, 3] - every[:, 1])
        clipped = every.clamp(0, 2 * s)
        visible = (clipped[:, 2] - clipped[:, 0]).clamp(min=0) * (clipped[:, 3] - clipped[:, 1]).clamp(min=0)
        keep = visible >= MIN_VISIBLE * area.clamp(min=1e-9)
        boxes_out = tv_tensors.BoundingBoxes(clipped[keep], format="XYXY", canvas_size=(2 * s, 2 * s))
        image_out = F.resize(tv_tensors.Image(canvas), [s, s], antialias=True)
        return image_out, {"boxes": F.resize(boxes_out, [s, s]), "labels": classes[keep], "image_id": -1}
