"""Fashion-MNIST (Xiao et al. 2017): 70,000 grey 28x28 images of 10 kinds of clothing.

Where the files are looked for, in order:
    1. ``$CNNLAB_FASHION_MNIST_DIR`` when set (and only there: an explicit choice is never overridden);
    2. ``/usr/share/datasets/fashion-mnist/`` (Debian/Ubuntu: ``sudo apt-get install dataset-fashion-mnist``);
    3. torchvision's download, kept in ``$XDG_CACHE_HOME/cnnlab/datasets`` (``~/.cache/cnnlab/datasets``):
       fetched once when online, read from there afterwards.
Each place holds the four IDX files, gzipped or not. They are decoded with numpy (``idx.read_idx``),
joined into one array (train first) and kept in memory for the life of the process, so opening the
set a second time costs nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.data.idx import read_idx
from cnnlab.errors import DataError

ENV_VAR = "CNNLAB_FASHION_MNIST_DIR"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
HOW_TO_GET = (
    "install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), connect to the internet "
    f"once so torchvision can download it, or point {ENV_VAR} at a folder holding the four IDX files"
)


@dataclass(frozen=True)
class FashionMNIST:
    """Train then test images (uint8 [N, 28, 28]) and labels (int64 [N]), and where they came from."""

    images: np.ndarray
    labels: np.ndarray
    train_count: int  # images[:train_count] are the official train split, the rest the test split
    source: Path


_LOADED: dict[Path, FashionMNIST] = {}


def load_fashion_mnist() -> FashionMNIST:
    """The data set, from memory when this process has read it before.

    Raises:
        DataError: it is not on this machine and cannot be downloaded; the message says how to get it.
    """
    folder = _locate()
    if folder not in _LOADED:
        _LOADED[folder] = _read(folder)
    return _LOADED[folder]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnnlab" / "datasets"


def _locate() -> Path:
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        folder = Path(chosen)
        missing = [name for name in FILES.values() if _find(folder, name) is None]
        if missing:
            raise DataError(f"{ENV_VAR}={chosen} lacks {', '.join(missing)} (.gz or not); {HOW_TO_GET}")
        return folder
    for folder in (SYSTEM_DIR, _torchvision_raw()):
        if folder in _LOADED or all(_find(folder, name) for name in FILES.values()):
            return folder
    return _download()


def _torchvision_raw() -> Path:
    return cache_dir() / "FashionMNIST" / "raw"  # where torchvision.datasets.FashionMNIST keeps the files


def _download() -> Path:
    try:
        from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

        TorchvisionFashionMNIST(root=str(cache_dir()), train=True, download=True)
        TorchvisionFashionMNIST(root=str(cache_dir()), train=False, download=True)
    except Exception as exc:  # urllib, ssl, socket and torchvision each raise their own kinds
        raise DataError(
            f"Fashion-MNIST is not on this machine and downloading it failed ({exc}); {HOW_TO_GET}"
        ) from None
    return _torchvision_raw()


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _read(folder: Path) -> FashionMNIST:
    arrays = {}
    for key, name in FILES.items():
        path = _find(folder, name)
        if path is None:
            raise DataError(f"{folder / name}(.gz) has disappeared; {HOW_TO_GET}")
        try:
            arrays[key] = read_idx(path)
        except DataError as exc:
            raise DataError(f"{exc}; the file is damaged: {HOW_TO_GET}") from None
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            found = f"{images.dtype} {images.shape}"
            raise DataError(f"{folder}: {split} images are {found}, not uint8 N x 28 x 28; {HOW_TO_GET}")
        if labels.shape != (len(images),) or labels.max(initial=0) >= len(CLASS_NAMES):
            found = f"labels of shape {labels.shape} up to {labels.max(initial=0)}"
            raise DataError(f"{folder}: {split} has {len(images)} images but {found}; {HOW_TO_GET}")
    return FashionMNIST(
        images=np.concatenate([arrays["train_images"], arrays["test_images"]]),
        labels=np.concatenate([arrays["train_labels"], arrays["test_labels"]]).astype(np.int64),
        train_count=len(arrays["train_labels"]),
        source=folder,
    )
