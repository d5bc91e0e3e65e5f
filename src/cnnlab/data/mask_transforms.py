"""Transforms for images that carry a mask of class ids, batching them, and normalisation statistics.

A sample is ``(image, target)`` as ``SegmentationSplit`` yields it: ``target["mask"]`` holds class ids
(255 = IGNORE_INDEX, pixels that count for nothing), plus ``spacing`` and ``index``, which pass through.

    2D, train   random scale (light 0.75-1.25, strong 0.5-2.0; image bilinear, mask nearest), pad to
                the crop size where smaller (image 0, mask 255) at a random place, random crop,
                horizontal flip, colour jitter (strong); "none": the pad and crop only
    2D, eval    nothing geometric: the whole image, so an evaluator can tile it with a sliding window
    3D, train   normalise, intensity scale 0.9-1.1 and shift +-0.1 (in std units), pad (image 0, which
                is the mean once normalised, mask 255) and random crop to the patch, a flip per axis,
                a random quarter turn in the H-W plane when the patch is square there
    3D, eval    normalise only
    all         uint8 images become float32 in [0, 1], then (x - mean) / std per channel

Geometric steps move the mask with the pixels (torchvision.transforms.v2 functionals in 2D, where
the mask is a ``tv_tensors.Mask``; plain tensor ops in 3D). Randomness comes from torch's generator,
which DataLoader seeds per worker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from cnnlab.data.segmentation.records import IGNORE_INDEX
from cnnlab.data.transforms import MatchChannels
from cnnlab.errors import ConfigError, DataError

MASK_AUGMENTS = ("none", "light", "strong")
_SCALES = {"light": (0.75, 1.25), "strong": (0.5, 2.0)}
Step = Callable[[torch.Tensor, dict[str, Any] | None], tuple[torch.Tensor, dict[str, Any] | None]]


class MaskCompose:
    """Steps called in turn on ``(image, target)``; ``target`` may be None (an image without a mask)."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)

    def __call__(self, image: torch.Tensor, target: dict[str, Any] | None = None) -> Any:
        for step in self.steps:
            image, target = step(image, target)
        return image if target is None else (image, target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(type(s).__name__ for s in self.steps)})"


def build_mask_transform(
    *,
    input_size: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    train: bool,
    augment: str = "light",
    hflip: bool = True,
    spatial_dims: int = 2,
) -> MaskCompose:
    """The transform from a split's raw sample to the model's normalised float input and its mask.

    Args:
        input_size: [C, H, W] or [C, D, H, W]: the channels, and the training crop (patch).
        mean: per-channel mean of the raw image (2D: on the [0, 1] scale).
        std: per-channel standard deviation, likewise.
        train: random crop and augmentation; otherwise only dtype and normalisation.
        augment: "none", "light" or "strong" (see the module docstring).
        hflip: allow horizontal flips (2D; off for data where left and right differ).
        spatial_dims: 2 or 3.
    """
    if augment not in MASK_AUGMENTS:
        raise ConfigError(f"--augment {augment!r} for segmentation: choose one of {', '.join(MASK_AUGMENTS)}")
    if spatial_dims not in (2, 3) or len(input_size) != spatial_dims + 1:
        axes = "[C, H, W]" if spatial_dims == 2 else "[C, D, H, W]"
        raise ConfigError(f"input size for {spatial_dims}D segmentation is {axes}, got {list(input_size)}")
    channels, crop = int(input_size[0]), [int(s) for s in input_size[1:]]
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise ConfigError(f"mean and std need {channels} values each (std positive), got {list(mean)} and {list(std)}")
    normalise = Normalise(mean, std)
    if spatial_dims == 3:
        steps: list[Step] = [normalise]
        if train and augment != "none":
            steps += [_Intensity(), RandomPadCrop(crop), _Flips3D(turn=crop[1] == crop[2])]
        elif train:
            steps.append(RandomPadCrop(crop))
        return MaskCompose(steps)
    steps = [_Channels(channels)]
    if train:
        if augment != "none":
            steps.append(RandomScale(*_SCALES[augment]))
        steps.append(RandomPadCrop(crop))
        if augment != "none" and hflip:
            steps.append(_HFlip())
        if augment == "strong":
            steps.append(_ImageOnly(v2.ColorJitter(0.3, 0.3, *((0.3, 0.02) if channels == 3 else (0, 0)))))
    steps.append(normalise)
    return MaskCompose(steps)


class Normalise:
    """uint8 to float32 in [0, 1] (float images are kept as they are), then per-channel (x - mean) / std."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]

    def __call__(self, image: torch.Tensor, target: dict[str, Any] | None) -> tuple[torch.Tensor, Any]:
        if image.shape[0] != len(self.mean):
            raise ConfigError(f"a {image.shape[0]}-channel image for a {len(self.mean)}-channel model")
        floats = F.to_dtype(image, torch.float32, scale=True) if not image.is_floating_point() else image.float()
        shape = (-1,) + (1,) * (image.ndim - 1)
        mean, std = torch.tensor(self.mean).view(shape), torch.tensor(self.std).view(shape)
        out = (floats.as_subclass(torch.Tensor) - mean) / std
        return (tv_tensors.Image(out) if isinstance(image, tv_tensors.Image) else out), target


class RandomScale:
    """Resize image (bilinear, antialiased) and mask (nearest) by one random factor in ``[low, high]``."""

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def __call__(self, image: torch.Tensor, target: dict[str, Any] | None) -> tuple[torch.Tensor, Any]:
        factor = self.low + (self.high - self.low) * float(torch.rand(()))
        size = [max(1, round(s * factor)) for s in image.shape[-2:]]
        image = F.resize(image, size, antialias=True)
        return image, _with_mask(target, lambda mask: F.resize(tv_tensors.Mask(mask), size))


class RandomPadCrop:
    """Pad where the image is smaller than ``size`` (image 0, mask 255; at a random place), then crop
    ``size`` at a random place. Works on the last 2 or 3 axes."""

    def __init__(self, size: Sequence[int]) -> None:
        self.size = [int(s) for s in size]

    def __call__(self, image: torch.Tensor, target: dict[str, Any] | None) -> tuple[torch.Tensor, Any]:
        axes = len(self.size)
        have = image.shape[-axes:]
        padding: list[int] = []  # torch order: last axis first, (before, after) per axis
        for want, got in zip(reversed(self.size), reversed(have), strict=True):
            extra = max(want - got, 0)
            before = int(torch.randint(0, extra + 1, ()))
            padding += [before, extra - before]
        starts = [int(torch.randint(0, max(g, w) - w + 1, ())) for w, g in zip(self.size, have, strict=True)]
        window = tuple(slice(s, s + w) for s, w in zip(starts, self.size, strict=True))

        def cut(x: torch.Tensor, fill: int) -> torch.Tensor:
            kind = type(x)
            plain = x.as_subclass(torch.Tensor)
            if any(padding):
                plain = torch.nn.functional.pad(plain, padding, value=fill)
            out = plain[(..., *window)]
            return kind(out) if kind in (tv_tensors.Image, tv_tensors.Mask) else out

        return cut(image, 0), _with_mask(target, lambda mask: cut(mask, IGNORE_INDEX))


def segmentation_collate(
    samples: Sequence[tuple[torch.Tensor, dict[str, Any]]],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Batch samples: images float ``[B, C, *S]``, masks int64 ``[B, *S]``, spacing float64 ``[B, dims]``
    and index int64 ``[B]``. Items of different sizes are padded at the end of each axis to the
    largest (image 0, mask 255), so batching never fails; images are not rescaled here."""
    images = [torch.as_tensor(s[0]).as_subclass(torch.Tensor) for s in samples]
    masks = [torch.as_tensor(s[1]["mask"]).as_subclass(torch.Tensor).long() for s in samples]
    largest = [max(sizes) for sizes in zip(*(m.shape for m in masks), strict=True)]
    batch_images = torch.stack([_pad_end(x, largest, 0) for x in images])
    batch = {
        "masks": torch.stack([_pad_end(m, largest, IGNORE_INDEX) for m in masks]),
        "spacing": torch.tensor([list(s[1]["spacing"]) for s in samples], dtype=torch.float64),
        "index": torch.tensor([int(s[1]["index"]) for s in samples], dtype=torch.int64),
    }
    return (batch_images if batch_images.is_floating_point() else batch_images.float()), batch


def dataset_mean_std(split: Any, max_items: int = 200) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of the raw images of ``split`` (uint8 scaled to [0, 1]),
    over at most ``max_items`` items spread evenly through it; for models trained from scratch.

    Raises:
        DataError: the split is empty.
    """
    if len(split) == 0:
        raise DataError("cannot compute mean and std of an empty split; it needs at least one item")
    raw = split.with_transform(None)
    picks = np.unique(np.linspace(0, len(split) - 1, min(len(split), max_items)).round().astype(np.int64))
    total = total_sq = None
    count = 0
    for i in picks:
        image = torch.as_tensor(raw[int(i)][0]).as_subclass(torch.Tensor)
        values = image.double() / 255.0 if image.dtype == torch.uint8 else image.double()
        flat = values.reshape(values.shape[0], -1)
        total = flat.sum(1) if total is None else total + flat.sum(1)
        total_sq = (flat**2).sum(1) if total_sq is None else total_sq + (flat**2).sum(1)
        count += flat.shape[1]
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(0).sqrt()
    std = torch.where(std < 1e-6, torch.ones_like(std), std)  # a constant channel: leave its scale alone
    return mean.tolist(), std.tolist()


def _pad_end(x: torch.Tensor, size: Sequence[int], fill: int) -> torch.Tensor:
    padding: list[int] = []
    for want, got in zip(reversed(size), reversed(x.shape[-len(size) :]), strict=True):
        padding += [0, want - got]
    return torch.nn.functional.pad(x, padding, value=fill) if any(padding) else x


def _with_mask(target: dict[str, Any] | None, change: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if target is None or "mask" not in target:
        return target
    return {**target, "mask": change(target["mask"])}


class _Channels:
    """Grey repeated to RGB, or RGB to grey, for the model's stem (2D)."""

    def __init__(self, channels: int) -> None:
        self.match = MatchChannels(channels)

    def __call__(self, image: torch.Tensor, target: dict[str, Any] | None) -> tuple[torch.Tensor, Any]:
        return tv_tensors.Image(self.match(image)), target


class _ImageOnly:
    def __init__(self, step: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.step = step

    def __call__(self, image: torch.Tensor, target: dict[str, Any] | None) -> tuple[torch.Tensor, Any]:
        return self.step(image), target


class _HFlip:
    def __call__(self, image: torch.Tensor, target: dict[str, Any] | None) -> tuple[torch.Tensor, Any]:
        if float(torch.rand(())) >= 0.5:
            return image, target
        return F.horizontal_flip(image), _with_mask(target, lambda m: F.horizontal_flip(tv_tensors.Mask(m)))


class _Flips3D:
    """A flip of each spatial axis with probability 1/2, and a quarter turn in H-W when ``turn``."""

    def __init__(self, turn: bool) -> None:
        self.turn = turn

    def __call__(self, image: torch.Tensor, target: dict[str, Any] | None) -> tuple[torch.Tensor, Any]:
        axes = [a for a in (-3, -2, -1) if float(torch.rand(())) < 0.5]
        turns = int(torch.randint(0, 4, ())) if self.turn else 0

        def move(x: torch.Tensor) -> torch.Tensor:
            x = torch.flip(x, axes) if axes else x
            return torch.rot90(x, turns, dims=(-2, -1)) if turns else x

        return move(image), _with_mask(target, move)


class _Intensity:
    """Scale by 0.9-1.1 and shift by +-0.1 (a normalised image: std units)."""

    def __call__(self, image: torch.Tensor, target: dict[str, Any] | None) -> tuple[torch.Tensor, Any]:
        scale = 0.9 + 0.2 * float(torch.rand(()))
        shift = -0.1 + 0.2 * float(torch.rand(()))
        return image * scale + shift, target
