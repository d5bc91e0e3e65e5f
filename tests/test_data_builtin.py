"""The built-in datasets: scikit-learn digits and Fashion-MNIST (Debian package, environment
variable, torchvision cache), their official and seeded splits, and what a user is told when the
files are missing or damaged."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.data import open_dataset
from cnnlab.errors import DataError


def test_digits() -> None:
    bundle = open_dataset("builtin:digits")
    assert bundle.class_names == [str(d) for d in range(10)]
    assert bundle.channels == 1 and bundle.native_size == (8, 8)
    sizes = {s: len(v) for s, v in bundle.splits.items()}
    assert sum(sizes.values()) == 1797 and sizes == {"train": 1257, "val": 179, "test": 361}
    totals = sum(np.array(split.class_counts()) for split in bundle.splits.values())
    for name, share in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
        counts = np.array(bundle.splits[name].class_counts())
        assert np.all(np.abs(counts - share * totals) < 1), f"{name} is not stratified: {counts}"
    image, label = bundle.splits["train"][0]
    assert image.shape == (1, 8, 8) and image.dtype == torch.uint8 and isinstance(label, int)
    images, labels = bundle.splits["train"].as_tensors()
    assert images.shape == (1257, 1, 8, 8) and images.max() == 255 and labels.dtype == torch.int64
    assert torch.equal(labels, torch.from_numpy(bundle.splits["train"].labels))


def test_digits_splits_follow_the_seed() -> None:
    def split_of(seed: int) -> torch.Tensor:
        return open_dataset("builtin:digits", seed=seed).splits["val"].as_tensors()[0]

    assert torch.equal(split_of(0), split_of(0))
    assert not torch.equal(split_of(0), split_of(1))


FASHION_FILES = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
needs_fashion = pytest.mark.skipif(
    not FASHION_FILES.exists(), reason="Fashion-MNIST is not installed (sudo apt-get install dataset-fashion-mnist)"
)


@needs_fashion
def test_fashion_mnist_official_split_with_a_carved_val(monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnlab.data import fashion_mnist

    monkeypatch.delenv(fashion_mnist.ENV_VAR, raising=False)
    monkeypatch.setattr(fashion_mnist, "_LOADED", {})  # time a first open, whatever ran before
    started = time.perf_counter()
    bundle = open_dataset("builtin:fashion-mnist")
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = open_dataset("builtin:fashion-mnist", seed=3)
    second = time.perf_counter() - started
    assert first < 2.0 and second < 0.5, f"opening took {first:.2f} s, then {second:.2f} s"
    assert bundle.class_names[0] == "T-shirt/top" and bundle.class_names[9] == "Ankle boot"
    assert bundle.channels == 1 and bundle.native_size == (28, 28)
    assert {s: len(v) for s, v in bundle.splits.items()} == {"train": 54000, "val": 6000, "test": 10000}
    assert bundle.splits["val"].class_counts() == [600] * 10
    assert bundle.splits["test"].class_counts() == [1000] * 10
    assert bundle.split_policy == "dataset (train/test) + stratified val 10% of train (seed 0)"
    assert not np.array_equal(bundle.splits["val"].labels, again.splits["val"].labels)
    assert np.array_equal(bundle.splits["test"].labels, again.splits["test"].labels)  # official, unseeded
    images, labels = bundle.splits["test"].as_tensors()
    assert images.shape == (10000, 1, 28, 28) and images.dtype == torch.uint8 and len(labels) == 10000


def write_idx(path: Path, array: np.ndarray, extra: bytes = b"") -> None:
    import gzip
    import struct

    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes() + extra))


def fake_fashion(folder: Path, train: int = 30, test: int = 10, corrupt: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", train), ("t10k", test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(count) % 10, b"\x00" if corrupt else b"")
    return folder


def test_fashion_mnist_dir_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_FASHION_MNIST_DIR", str(fake_fashion(tmp_path / "fm")))
    bundle = open_dataset("builtin:fashion-mnist")
    # Three images per class: 10% would round to none, but every class of 3 gets one in val.
    assert {s: len(v) for s, v in bundle.splits.items()} == {"train": 20, "val": 10, "test": 10}
    assert bundle.splits["val"].class_counts() == [1] * 10


def test_fashion_mnist_dir_with_damaged_or_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_FASHION_MNIST_DIR", str(fake_fashion(tmp_path / "bad", corrupt=True)))
    with pytest.raises(DataError, match="header announces 30"):
        open_dataset("builtin:fashion-mnist")
    monkeypatch.setenv("CNNLAB_FASHION_MNIST_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="CNNLAB_FASHION_MNIST_DIR=.*lacks train-images-idx3-ubyte.*apt-get install"):
        open_dataset("builtin:fashion-mnist")


def test_fashion_mnist_fallback_reads_torchvision_cache_then_tells_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets

    from cnnlab.data import fashion_mnist

    monkeypatch.delenv(fashion_mnist.ENV_VAR, raising=False)
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "not-installed")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(DataError) as caught:
        open_dataset("builtin:fashion-mnist")
    message = str(caught.value)
    assert "sudo apt-get install dataset-fashion-mnist" in message and "internet" in message
    assert "Error downloading" in message
    fake_fashion(tmp_path / "cache" / "cnnlab" / "datasets" / "FashionMNIST" / "raw", train=20)
    assert len(open_dataset("builtin:fashion-mnist").splits["test"]) == 10  # found without downloading
