"""Pre-processing from the model card, shared by every runtime.

An exported model that "gives different outputs" is nearly always one fed differently (resize,
crop, channel order, normalisation). Every Predictor goes through this one function, so parity,
benchmarks and serving measure the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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
        if card.task == "segment":  # whole images: normalised only; larger ones are tiled, not resized
            self.transform = _normalise(card)
        elif card.task == "detect":  # boxes map back to the image only through an aspect-keeping letterbox
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
        if self.card.spatial_dims == 3:
            volume = _volume(item)
            if volume.shape[0] != self.card.in_chans:
                where = f"{item}: " if isinstance(item, (str, Path)) else ""
                raise DataError(
                    f"{where}a volume of {volume.shape[0]} channels for a model trained on {self.card.in_chans}"
                )
            return self.transform(volume), tuple(volume.shape[-3:])
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


def _normalise(card: ModelCard) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 images to [0, 1], float volumes as they are; then the card's per-channel mean and std."""
    shape = (-1,) + (1,) * card.spatial_dims
    mean = torch.tensor(card.mean, dtype=torch.float32).reshape(shape)
    std = torch.tensor(card.std, dtype=torch.float32).reshape(shape)

    match = None
    if card.spatial_dims == 2:  # a grey photo for an RGB model and the reverse, as in training
        from cnnlab.data.transforms import MatchChannels

        match = MatchChannels(card.in_chans)

    def normalise(image: torch.Tensor) -> torch.Tensor:
        image = match(image) if match is not None else image
        x = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        return (x.as_subclass(torch.Tensor) - mean) / std

    return normalise


def _volume(item: ImageInput) -> torch.Tensor:
    """A volume file (.nii, .nii.gz, .npy, .npz) or an array -> float32 [C, D, H, W]."""
    if isinstance(item, (str, Path)):
        from cnnlab.data.segmentation import load_volume

        return load_volume(item)
    volume = torch.as_tensor(np.asarray(item) if isinstance(item, np.ndarray) else item, dtype=torch.float32)
    if volume.dim() == 3:
        volume = volume[None]
    if volume.dim() != 4:
        raise DataError(f"a volume must be DxHxW or CxDxHxW, got shape {list(volume.shape)}")
    return volume


def fit_to(tensor: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``tensor`` [C, *S] padded with zeros at the end of each axis, then cropped, to [C, *size]."""
    pad: list[int] = []
    for have, want in zip(reversed(tensor.shape[1:]), reversed(list(size)), strict=True):
        pad += [0, max(0, int(want) - int(have))]
    grown = torch.nn.functional.pad(tensor, pad)
    return grown[(slice(None), *(slice(0, int(s)) for s in size))]


def _from_array(array: np.ndarray) -> torch.Tensor:
    """HxW, HxWxC (uint8 or 0..1 floats) -> uint8 [C, H, W]."""
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise DataError(f"an image array must be HxW or HxWxC, got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


VOLUME_SUFFIXES = (".nii", ".nii.gz", ".npy", ".npz")


LABEL_FOLDERS = ("masks", "labels")  # beside an images/ folder: a dataset's labels, not inputs


def expand_inputs(inputs: Iterable[str | Path], *, volumes: bool = False) -> list[Path]:
    """Files as given; folders expanded to the images (or ``volumes``) inside them (recursively, sorted).

    A dataset folder can be given as it is: a ``masks/`` or ``labels/`` folder next to an ``images/``
    folder holds the labels of those images, and is passed over.
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and _wanted(p, volumes) and not p.name.startswith(".") and not _is_label(p, path)
            )
        else:
            found.append(path)
    return found


def _is_label(file: Path, root: Path) -> bool:
    for folder in file.relative_to(root).parents:
        if folder == Path("."):  # the folder asked for is predicted on, whatever its name
            break
        here = root / folder
        if here.name.lower() in LABEL_FOLDERS and (here.parent / "images").is_dir():
            return True
    return False


def _wanted(path: Path, volumes: bool) -> bool:
    name = path.name.lower()
    return name.endswith(VOLUME_SUFFIXES) if volumes else path.suffix.lower() in IMAGE_EXTENSIONS
