"""Built-in data sets, opened by name (``builtin:digits``), held in memory as uint8 tensors.

    digits          scikit-learn's 1,797 grey 8x8 handwritten digits (values 0..16 scaled to 0..255);
                    no official split, so stratified 70/10/20
    fashion-mnist   70,000 grey 28x28 clothing images; the official 60,000 train / 10,000 test, with
                    val carved from train (``test_fraction`` does not apply); see ``fashion_mnist``

Decoded arrays are cached per process; each ``open`` builds new split views over them, and
``InMemorySplit`` hands out copies, so nothing a caller does changes the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

from cnnlab.data.bundle import DatasetBundle
from cnnlab.data.split import InMemorySplit
from cnnlab.data.stratify import SPLITS, SplitOptions, split_positions
from cnnlab.errors import DataError, suggest

PREFIX = "builtin:"


@dataclass(frozen=True)
class _Arrays:
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: np.ndarray  # int64 [N]
    declared: list[str] | None  # the split of each image when the set has an official one
    class_names: tuple[str, ...]


@cache
def _digits() -> _Arrays:
    from sklearn.datasets import load_digits  # imported here: scikit-learn takes a second to import

    digits = load_digits()
    scaled = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return _Arrays(torch.from_numpy(scaled[:, None]), digits.target.astype(np.int64), None, tuple("0123456789"))


def _fashion_mnist() -> _Arrays:
    from cnnlab.data.fashion_mnist import CLASS_NAMES, load_fashion_mnist

    data = load_fashion_mnist()
    declared = ["train"] * data.train_count + ["test"] * (len(data.labels) - data.train_count)
    return _Arrays(torch.from_numpy(data.images[:, None]), data.labels, declared, CLASS_NAMES)


BUILTINS: dict[str, Callable[[], _Arrays]] = {"digits": _digits, "fashion-mnist": _fashion_mnist}


def open_builtin(source: str, options: SplitOptions) -> DatasetBundle:
    """Open ``builtin:NAME``.

    Raises:
        DataError: NAME is not a built-in set, or its files cannot be found.
    """
    name = source[len(PREFIX) :]
    loader = BUILTINS.get(name)
    if loader is None:
        known = ", ".join(PREFIX + n for n in BUILTINS)
        raise DataError(f"unknown built-in data set {source!r}{suggest(name, list(BUILTINS))}; built-in sets: {known}")
    arrays = loader()
    everything = InMemorySplit(arrays.images, arrays.labels, arrays.class_names)
    declared_splits = sorted(set(arrays.declared)) if arrays.declared is not None else None
    positions, policy = split_positions(arrays.labels, arrays.declared or [], declared_splits, options)
    return DatasetBundle(
        name=source,
        task="classify",
        class_names=list(arrays.class_names),
        channels=arrays.images.shape[1],
        native_size=(arrays.images.shape[2], arrays.images.shape[3]),
        splits={split: everything.subset(positions[split]) for split in SPLITS},
        split_policy=policy,
    )
