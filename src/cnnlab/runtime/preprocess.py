"""Pre-processing from the model card, shared by every runtime.

An exported model that "gives different outputs" is nearly always one fed differently (resize,
crop, channel order, normalisation). Every Predictor goes through this one function, so parity,
benchmarks and serving measure the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.images import IMAGE_EXTENSIONS, load_image
from cnnlab.data.transforms import build_transform
from cnnlab.errors import DataError
from cnnlab.runs import ModelCard

ImageInput = str | Path | np.ndarray | torch.Tensor


class Preprocessor:
    def __init__(self, card: ModelCard) -> None:
        self.card = card
        if card.task == "detect":  # boxes map back to the image only through an aspect-keeping letterbox
            from cnnlab.data.box_transforms import build_box_transform

            self.transform = build_box_transform(
                input_size=card.input_size, mean=card.mean, std=card.std, train=False, augment="none"
            )
        else:
            self.transform = build_transform(
                input_size=card.input_size,
                mean=card.mean,
                std=card.std,
                train=False,
                interpolation=card.interpolation,
                crop_pct=card.crop_pct,
            )

    def image(self, item: ImageInput) -> torch.Tensor:
        """One input -> the model's float input [C, H, W]. Files are decoded robustly (EXIF, CMYK, alpha...)."""
        return self.image_and_size(item)[0]

    def image_and_size(self, item: ImageInput) -> tuple[torch.Tensor, tuple[int, int]]:
        """The model's input and the (H, W) of the decoded original, for outputs in its pixels (boxes)."""
        if isinstance(item, (str, Path)):
            tensor = load_image(item)
        elif isinstance(item, np.ndarray):
            tensor = _from_array(item)
        elif isinstance(item, torch.Tensor):
            tensor = item if item.dtype == torch.uint8 else (item.clamp(0, 1) * 255).round().to(torch.uint8)
            if tensor.dim() == 2:
                tensor = tensor[None]
        else:
            raise DataError(f"cannot pre-process a {type(item).__name__}; give an image path, an array or a tensor")
        from torchvision import tv_tensors

        return self.transform(tv_tensors.Image(tensor)), (int(tensor.shape[-2]), int(tensor.shape[-1]))

    def batch(self, items: Sequence[ImageInput]) -> torch.Tensor:
        return torch.stack([self.image(item) for item in items])


def _from_array(array: np.ndarray) -> torch.Tensor:
    """HxW, HxWxC (uint8 or 0..1 floats) -> uint8 [C, H, W]."""
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise DataError(f"an image array must be HxW or HxWxC, got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders expanded to the images inside them (recursively, sorted)."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
            )
        else:
            found.append(path)
    return found
