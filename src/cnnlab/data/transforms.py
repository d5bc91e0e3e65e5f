"""Per-sample transforms (torchvision.transforms.v2, so boxes and masks can ride along later).

Resolution policy, from the model card's input size:
    evaluation   resize the shorter side to size / crop_pct, centre-crop to size
                 (crop_pct 1.0: resize straight to the input size, nothing is cut)
    training     small images (native side <= 64 px, e.g. digits, Fashion-MNIST): resize to the input
                 size, then a random crop with padding of 1/8 of the side, as CIFAR recipes do;
                 larger images: RandomResizedCrop(scale 0.35-1), which keeps most of the object
                 when fine-tuning on a small dataset
Channels follow the model: grey images are repeated for an RGB stem, colour images are converted
to grey for a one-channel stem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision.transforms import InterpolationMode, v2

from cnnlab.errors import ConfigError

AUGMENTS = ("none", "light", "randaugment", "trivialaugment", "mosaic")  # mosaic: detection only
SMALL_IMAGE = 64


def _interpolation(name: str) -> InterpolationMode:
    try:
        return InterpolationMode(name.lower())
    except ValueError:
        raise ConfigError(f"unknown interpolation {name!r}; use bilinear, bicubic or nearest") from None


class MatchChannels(torch.nn.Module):
    """Repeat a grey image to ``channels`` or average colour down to one channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, image: Any) -> Any:
        have = image.shape[-3]
        if have == self.channels:
            return image
        if have == 1:
            return image.expand(*image.shape[:-3], self.channels, *image.shape[-2:]).clone()
        if self.channels == 1:
            return v2.functional.rgb_to_grayscale(image[..., :3, :, :], num_output_channels=1)
        raise ConfigError(f"cannot feed {have}-channel images to a {self.channels}-channel model")


def build_transform(
    *,
    input_size: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    train: bool,
    augment: str = "light",
    hflip: bool = True,
    random_erasing: float = 0.0,
    interpolation: str = "bilinear",
    crop_pct: float = 1.0,
    native_size: tuple[int, int] | None = None,
) -> v2.Compose:
    """The transform from a uint8 image tensor [C, H, W] to the model's normalised float input."""
    if augment not in AUGMENTS:
        raise ConfigError(f"unknown augment {augment!r}; choose one of {', '.join(AUGMENTS)}")
    if augment == "mosaic":
        raise ConfigError(
            "--augment mosaic tiles images with their boxes: it is for detection; use light or randaugment"
        )
    channels, height, width = input_size[0], input_size[-2], input_size[-1]
    mode = _interpolation(interpolation)
    steps: list[Any] = [MatchChannels(channels)]
    if not train or augment == "none":
        steps += _resize_eval(height, width, crop_pct, mode)
    else:
        small = native_size is not None and max(native_size) <= SMALL_IMAGE
        if small:
            steps += [
                v2.Resize((height, width), interpolation=mode, antialias=True),
                v2.RandomCrop((height, width), padding=max(1, height // 8), padding_mode="reflect"),
            ]
        else:
            steps.append(v2.RandomResizedCrop((height, width), scale=(0.35, 1.0), interpolation=mode, antialias=True))
        if hflip:
            steps.append(v2.RandomHorizontalFlip())
        if augment == "randaugment":
            steps.append(v2.RandAugment(num_ops=2, magnitude=9, interpolation=mode))
        elif augment == "trivialaugment":
            steps.append(v2.TrivialAugmentWide(interpolation=mode))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    if train and random_erasing > 0:
        steps.append(v2.RandomErasing(p=random_erasing, value=0))
    return v2.Compose(steps)


def _resize_eval(height: int, width: int, crop_pct: float, mode: InterpolationMode) -> list[Any]:
    if crop_pct >= 1.0:
        return [v2.Resize((height, width), interpolation=mode, antialias=True)]
    short = round(min(height, width) / crop_pct)
    return [v2.Resize(short, interpolation=mode, antialias=True), v2.CenterCrop((height, width))]
