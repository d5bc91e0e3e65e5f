"""Transforms for images that carry boxes: the letterbox every detector input goes through, and the
training augmentation that moves boxes with the pixels (torchvision.transforms.v2 does the moving).

A sample is ``(image, target)``: a uint8 ``tv_tensors.Image`` [C, H, W] and a dict with
``boxes`` (``tv_tensors.BoundingBoxes``, XYXY pixels) and ``labels`` (int64 [N]). The same letterbox
runs in training, evaluation, prediction and in front of every exported artifact, so a box drawn on
the user's image maps back with :func:`unletterbox_boxes` the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from cnnlab.data.transforms import MatchChannels
from cnnlab.errors import ConfigError

PAD_VALUE = 114  # mid-grey padding: neither black nor white, so it is not mistaken for an object's edge
BOX_AUGMENTS = ("none", "light", "strong")


def letterbox_geometry(height: int, width: int, side: int) -> tuple[float, int, int]:
    """(scale, new_height, new_width): the image scaled so its longer side is ``side``."""
    scale = side / max(height, width)
    return scale, max(1, round(height * scale)), max(1, round(width * scale))


class Letterbox:
    """Scale the longer side to ``side`` keeping the aspect ratio, then pad right and bottom to a square.

    Padding only on the far sides keeps the origin fixed, so undoing it is one division by the scale.
    """

    def __init__(self, side: int) -> None:
        if side < 1:
            raise ConfigError(f"letterbox size must be positive, got {side}")
        self.side = side

    def __call__(self, image: Any, target: dict[str, Any] | None = None) -> Any:
        height, width = image.shape[-2:]
        _, new_h, new_w = letterbox_geometry(height, width, self.side)
        image = F.resize(image, [new_h, new_w], antialias=True)
        pad = [0, 0, self.side - new_w, self.side - new_h]
        image = F.pad(image, pad, fill=PAD_VALUE)
        if target is None:
            return image
        target = dict(target)
        if "boxes" in target:
            boxes = F.resize(target["boxes"], [new_h, new_w])
            target["boxes"] = F.pad(boxes, pad)
        return image, target


def unletterbox_boxes(boxes: torch.Tensor, original_hw: Sequence[int], side: int) -> torch.Tensor:
    """Boxes predicted on the letterboxed input, in the original image's pixels (clipped to it)."""
    height, width = int(original_hw[0]), int(original_hw[1])
    scale, _, _ = letterbox_geometry(height, width, side)
    out = boxes.float() / scale
    out[..., 0::2] = out[..., 0::2].clamp(0, width)
    out[..., 1::2] = out[..., 1::2].clamp(0, height)
    return out


class _ImageOnly:
    """Applies an image-only step (channel matching) inside a pipeline of (image, target) pairs."""

    def __init__(self, step: Any) -> None:
        self.step = step

    def __call__(self, image: Any, target: dict[str, Any] | None = None) -> Any:
        image = tv_tensors.Image(self.step(image))
        return image if target is None else (image, target)


def build_box_transform(
    *,
    input_size: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    train: bool,
    augment: str = "light",
    hflip: bool = True,
) -> v2.Compose:
    """uint8 image + boxes -> the detector's normalised float input + boxes in its pixels.

    ``light``: horizontal flip, colour jitter and a random affine (scale 0.75-1.25, shift 10%);
    ``strong`` adds a larger scale range and a zoom-out (SSD-style) for small objects. Boxes that an
    augmentation pushes out of the image, or shrinks below a pixel, are removed with their labels.
    """
    if augment not in BOX_AUGMENTS:
        raise ConfigError(f"--augment {augment!r} for detection: choose one of {', '.join(BOX_AUGMENTS)}")
    channels, side = input_size[0], int(input_size[-1])
    if int(input_size[-2]) != side:
        raise ConfigError(
            f"detection input must be square (letterboxed), got {list(input_size)}; use --input-size {side}"
        )
    steps: list[Any] = [_ImageOnly(MatchChannels(channels))]
    if train and augment != "none":
        if hflip:
            steps.append(v2.RandomHorizontalFlip())
        if channels == 3:
            steps.append(v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.4, hue=0.02))
        if augment == "strong":
            steps.append(v2.RandomZoomOut(fill=PAD_VALUE, side_range=(1.0, 2.0), p=0.3))
        scale = (0.5, 1.5) if augment == "strong" else (0.75, 1.25)
        steps.append(v2.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=scale, fill=PAD_VALUE))
    steps.append(Letterbox(side))
    if train:
        steps.append(v2.SanitizeBoundingBoxes(min_size=1.0))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)


def detection_collate(samples: Sequence[tuple[torch.Tensor, dict[str, Any]]]) -> tuple[torch.Tensor, list[dict]]:
    """Images stacked (every one letterboxed to the same square), targets kept as a list of dicts
    with plain tensors: boxes float32 [N, 4] XYXY, labels int64 [N], and the image id."""
    images = torch.stack([torch.as_tensor(s[0]) for s in samples])
    targets = []
    for _, target in samples:
        boxes = target.get("boxes")
        boxes = torch.zeros(0, 4) if boxes is None else boxes.as_subclass(torch.Tensor).float().reshape(-1, 4)
        labels = torch.as_tensor(target.get("labels", torch.zeros(0)), dtype=torch.int64).reshape(-1)
        targets.append({"boxes": boxes, "labels": labels, "image_id": int(target.get("image_id", -1))})
    return images, targets


def as_box_target(boxes: torch.Tensor, labels: torch.Tensor, height: int, width: int) -> dict[str, Any]:
    """A target dict the v2 transforms understand, from plain tensors."""
    return {
        "boxes": tv_tensors.BoundingBoxes(boxes.float().reshape(-1, 4), format="XYXY", canvas_size=(height, width)),
        "labels": labels.to(torch.int64).reshape(-1),
    }
