"""open_dataset over image folders and CSV files: skips, splits, views, pickling (built-in sets: test_data_builtin)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision import tv_tensors

from cnnlab.data import (
    ClassificationSplit,
    DatasetBundle,
    FileSplit,
    InMemorySplit,
    open_dataset,
    stratified_split,
)
from cnnlab.errors import ConfigError, DataError
from tests import data_corpus as corpus

# ---- helpers -----------------------------------------------------------------------------------------


def grey_images(folder: Path, count: int, size: tuple[int, int] = (12, 10), seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [corpus.grey_png(folder / f"{i:03d}.png", size=size, seed=seed + i) for i in range(count)]


def all_paths(bundle: DatasetBundle) -> list[str]:
    return [p for split in bundle.splits.values() for p in split.paths]


def read_all(split: ClassificationSplit) -> list[tuple[torch.Tensor, int]]:
    return [split[i] for i in range(len(split))]


def double(image: torch.Tensor) -> torch.Tensor:
    """A picklable transform (module level), for the pickling tests."""
    return image.float() * 2


# ---- a folder full of trouble ------------------------------------------------------------------------


@pytest.fixture
def messy_folder(tmp_path: Path) -> tuple[Path, set[str]]:
    """cats/ (colour, odd modes, nested, upper-case suffix), dogs/ (grey, 16-bit, 1-bit) and every
    broken file kind, an empty class folder, a hidden broken file and a text file. Returns the root and
    the files that must be usable."""
    root = tmp_path / "messy"
    cats, dogs = root / "cats", root / "dogs"
    (cats / "more").mkdir(parents=True)
    dogs.mkdir()
    (root / "empty").mkdir()
    good = [
        corpus.rgb_jpeg(cats / "rgb.jpg"),
        corpus.rgb_png(cats / "rgb.png"),
        corpus.cmyk_jpeg(cats / "cmyk.jpg"),
        corpus.rotated_jpeg(cats / "rotated.jpg"),
        corpus.rgba_png(cats / "rgba.png"),
        corpus.palette_png(cats / "palette.png", transparent=True),
        corpus.rgb_jpeg(cats / "more" / "UPPER.JPG", size=(30, 30)),
        corpus.grey_png(dogs / "grey.png"),
        corpus.grey16_png(dogs / "deep.png"),
        corpus.bilevel_png(dogs / "bits.png"),
        corpus.grey32_tiff(dogs / "deep.tif"),
    ]
    for name, _, builder in corpus.BAD_FILES:
        builder(dogs / name)
    corpus.text_as_image(cats / ".hidden.jpg")  # hidden: neither read nor counted
    (cats / "notes.txt").write_text("labelling notes")  # not an image by name: ignored
    return root, {str(p) for p in good}


def test_messy_folder_opens_and_counts_every_bad_file(messy_folder: tuple[Path, set[str]]) -> None:
    root, good = messy_folder
    bundle = open_dataset(root)
    assert bundle.name == str(root) and bundle.task == "classify"
    assert bundle.class_names == ["cats", "dogs"]  # "empty" dropped
    assert bundle.skipped.counts == {
        "empty file": 1,
        "not an image": 1,
        "truncated": 2,
        "too large": 1,
        "empty class": 1,
    }
    skipped_files = {Path(e["file"]).name for e in bundle.skipped.examples}
    assert skipped_files == {name for name, _, _ in corpus.BAD_FILES} | {"empty"}
    assert bundle.channels == 3 and bundle.native_size is None  # colour present, sizes differ
    assert sorted(all_paths(bundle)) == sorted(good)
    for split in bundle.splits.values():
        for (image, label), path in zip(read_all(split), split.paths, strict=True):
            assert isinstance(image, tv_tensors.Image) and image.dtype == torch.uint8
            assert image.shape[0] == 3 and image.ndim == 3
            assert bundle.class_names[label] == Path(path).relative_to(root).parts[0]
    summary = json.loads(json.dumps(bundle.describe()))
    assert summary["skipped"]["counts"]["truncated"] == 2
    assert sum(s["size"] for s in summary["splits"].values()) == len(good)
    assert summary["classes"] == ["cats", "dogs"] and summary["native_size"] is None


def test_folder_of_same_size_grey_images_is_one_channel_with_a_native_size(tmp_path: Path) -> None:
    grey_images(tmp_path / "a", 10)
    grey_images(tmp_path / "b", 10, seed=100)
    bundle = open_dataset(tmp_path)
    assert bundle.channels == 1 and bundle.native_size == (12, 10)
    assert bundle.split_policy == "stratified 70/10/20 (seed 0)"
    assert [len(bundle.splits[s]) for s in ("train", "val", "test")] == [14, 2, 4]
    images, labels = bundle.splits["test"].as_tensors()
    assert images.shape == (4, 1, 12, 10) and images.dtype == torch.uint8
    items = read_all(bundle.splits["test"])
    assert torch.equal(images, torch.stack([img for img, _ in items]))
    assert labels.tolist() == [label for _, label in items]


def test_one_colour_image_makes_the_whole_set_three_channels(tmp_path: Path) -> None:
    grey = grey_images(tmp_path / "a", 3)
    (tmp_path / "b").mkdir()
    corpus.rgb_png(tmp_path / "b" / "c.png")
    bundle = open_dataset(tmp_path)
    assert bundle.channels == 3
    split = next(s for s in bundle.splits.values() if str(grey[0]) in s.paths)
    image, _ = split[split.paths.index(str(grey[0]))]
    assert image.shape == (3, 12, 10) and torch.equal(image[0], image[2])  # grey repeated


def test_as_tensors_needs_one_image_size(messy_folder: tuple[Path, set[str]]) -> None:
    bundle = open_dataset(messy_folder[0])
    with pytest.raises(NotImplementedError, match="differ in size"):
        bundle.splits["train"].as_tensors()


def test_train_test_folders_are_kept_and_val_is_carved_from_train(tmp_path: Path) -> None:
    train = grey_images(tmp_path / "train" / "a", 10) + grey_images(tmp_path / "train" / "b", 10, seed=50)
    test = grey_images(tmp_path / "test" / "a", 2) + grey_images(tmp_path / "test" / "c", 2)
    bundle = open_dataset(tmp_path)
    assert bundle.class_names == ["a", "b", "c"]  # the union; c exists only in test
    assert bundle.split_policy == "dataset (train/test) + stratified val 10% of train (seed 0)"
    assert sorted(bundle.splits["test"].paths) == sorted(map(str, test))
    assert sorted(bundle.splits["train"].paths + bundle.splits["val"].paths) == sorted(map(str, train))
    assert bundle.splits["val"].class_counts() == [1, 1, 0]
    assert bundle.splits["test"].class_counts() == [2, 0, 2]


def test_train_valid_test_folders_are_used_as_given(tmp_path: Path) -> None:
    for split, count in (("train", 4), ("valid", 2), ("test", 3)):
        grey_images(tmp_path / split / "a", count)
        grey_images(tmp_path / split / "b", count, seed=9)
    bundle = open_dataset(tmp_path)
    assert bundle.split_policy == "dataset (train/val/test)"
    assert {s: len(v) for s, v in bundle.splits.items()} == {"train": 8, "val": 4, "test": 6}
    assert all("/valid/" in p for p in bundle.splits["val"].paths)


def test_val_and_valid_together_are_ambiguous(tmp_path: Path) -> None:
    for split in ("train", "val", "valid"):
        grey_images(tmp_path / split / "a", 2)
    with pytest.raises(DataError, match="both val/ and valid/"):
        open_dataset(tmp_path)


# ---- CSV -----------------------------------------------------------------------------------------------


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_csv_with_split_column_skips_bad_rows_by_row_number(tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    files = grey_images(images, 8)
    elsewhere = grey_images(tmp_path / "elsewhere", 1, seed=99)[0]
    csv_path = write_csv(
        tmp_path / "labels.csv",
        [
            "Path,Label,Split",  # header names are matched case-insensitively
            "imgs/000.png,10,train",
            "imgs/001.png,2,train",
            "imgs/002.png,10,train",
            "imgs/003.png,2,train",
            "imgs/004.png,10,valid",
            "imgs/005.png,2,test",
            "imgs/missing.png,2,train",  # row 8
            "imgs/006.png,,train",  # row 9: empty label
            "imgs/007.png,2,holdout",  # row 10: unknown split
            "",
            f"{elsewhere},10,test",  # absolute path
        ],
    )
    bundle = open_dataset(csv_path)
    assert bundle.class_names == ["2", "10"]  # integer labels in numeric order
    assert bundle.skipped.counts == {"missing file": 1, "empty label": 1, "unknown split": 1}
    details = {e["reason"]: e["detail"] for e in bundle.skipped.examples}
    assert details["missing file"].startswith("labels.csv row 8")
    assert details["empty label"].startswith("labels.csv row 9")
    assert "labels.csv row 10" in details["unknown split"] and "'holdout'" in details["unknown split"]
    assert bundle.split_policy == "dataset (train/val/test)"
    assert sorted(bundle.splits["train"].paths) == sorted(str(f) for f in files[:4])
    assert bundle.splits["val"].paths == [str(files[4])]
    assert sorted(bundle.splits["test"].paths) == sorted([str(files[5]), str(elsewhere)])
    assert bundle.splits["train"].class_counts() == [2, 2]


def test_csv_without_split_column_is_split_70_10_20(tmp_path: Path) -> None:
    files = grey_images(tmp_path, 20)
    rows = ["path,label"] + [f"{f.name},{'cat' if i % 2 else 'dog'}" for i, f in enumerate(files)]
    bundle = open_dataset(write_csv(tmp_path / "data.csv", rows))
    assert bundle.class_names == ["cat", "dog"]
    assert bundle.split_policy == "stratified 70/10/20 (seed 0)"
    assert [len(bundle.splits[s]) for s in ("train", "val", "test")] == [14, 2, 4]


def test_csv_without_required_column_names_its_columns(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "bad.csv", ["file,label", "a.png,cat"])
    with pytest.raises(DataError) as caught:
        open_dataset(csv_path)
    message = str(caught.value)
    assert str(csv_path) in message and "no path column" in message and "columns are file, label" in message


def test_csv_whose_train_rows_are_all_unusable(tmp_path: Path) -> None:
    good = grey_images(tmp_path, 1)[0]
    csv_path = write_csv(tmp_path / "d.csv", ["path,label,split", "nothing.png,a,train", f"{good.name},a,test"])
    with pytest.raises(
        DataError, match=r"train split has 0 usable images of 1 files \(skipped overall: 1 missing file\)"
    ):
        open_dataset(csv_path)


# ---- errors a user sees ----------------------------------------------------------------------------------


def test_dataset_with_nothing_usable_says_what_was_found(tmp_path: Path) -> None:
    folder = tmp_path / "junk" / "only"
    folder.mkdir(parents=True)
    for i in range(3):
        corpus.text_as_image(folder / f"t{i}.jpg")
    corpus.truncated_jpeg(folder / "cut.jpg")
    corpus.truncated_png(folder / "cut.png")
    with pytest.raises(DataError) as caught:
        open_dataset(tmp_path / "junk")
    assert "0 usable images of 5 files (3 not an image, 2 truncated)" in str(caught.value)


def test_csv_with_nothing_usable_counts_rows_and_files_alike(tmp_path: Path) -> None:
    corpus.text_as_image(tmp_path / "note.jpg")
    csv_path = write_csv(tmp_path / "d.csv", ["path,label", "gone.png,a", "note.jpg,", "note.jpg,b"])
    with pytest.raises(
        DataError, match=r"0 usable images of 3 files \(1 empty label, 1 missing file, 1 not an image\)"
    ):
        open_dataset(csv_path)


def test_folder_of_unsupported_files_mentions_them(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "photo.heic").write_bytes(b"\x00" * 10)
    with pytest.raises(DataError, match=r"0 usable images of 0 files.*1 \.heic"):
        open_dataset(tmp_path)


def test_unknown_format_lists_the_accepted_ones(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("hello")
    with pytest.raises(DataError) as caught:
        open_dataset(path)
    message = str(caught.value)
    assert str(path) in message and "builtin:digits" in message and ".csv" in message and "folder" in message


def test_missing_path_and_unknown_builtin(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere does not exist"):
        open_dataset(tmp_path / "nowhere")
    with pytest.raises(DataError, match="did you mean fashion-mnist"):
        open_dataset("builtin:fashion_mnist")


def test_folder_without_class_folders(tmp_path: Path) -> None:
    corpus.grey_png(tmp_path / "a.png")
    with pytest.raises(DataError, match="no class folders"):
        open_dataset(tmp_path)


@pytest.mark.parametrize(
    ("options", "field"),
    [({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction \\+ test_fraction"),
     ({"val_fraction": -0.1}, "val_fraction"), ({"seed": -1}, "seed"), ({"max_pixels": 0}, "max_pixels")],
)  # fmt: skip
def test_bad_options_are_config_errors(options: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        open_dataset("builtin:digits", **options)


# ---- views, pickling, and files that go bad after opening ---------------------------------------------------


def test_views_share_data_and_transforms_do_not_leak() -> None:
    train = open_dataset("builtin:digits").splits["train"]
    assert isinstance(train, InMemorySplit)
    view = train.subset([5, 2, 7])
    assert view._images is train._images  # a view, not a copy
    assert torch.equal(view[1][0], train[2][0]) and view[1][1] == train[2][1]
    assert view.labels.tolist() == [train.labels[5], train.labels[2], train.labels[7]]
    assert len(train.subset(train.labels == 3)) == train.class_counts()[3]  # a boolean mask
    doubled = view.with_transform(double)
    assert doubled._images is train._images
    assert torch.equal(doubled[0][0], view[0][0].float() * 2)
    assert view.transform is None and view[0][0].dtype == torch.uint8
    image, _ = view[0]
    image.zero_()  # an item is the caller's to modify
    images, _ = view.as_tensors()
    images.zero_()  # and so are as_tensors' results
    assert view[0][0].sum() > 0
    with pytest.raises(IndexError):
        view[3]


def test_file_views_share_their_path_list(tmp_path: Path) -> None:
    grey_images(tmp_path / "a", 6)
    grey_images(tmp_path / "b", 6, seed=20)
    train = open_dataset(tmp_path).splits["train"]
    assert isinstance(train, FileSplit) and not train.in_memory
    view = train.subset([1, 0]).with_transform(double)
    assert view._paths is train._paths
    assert view.paths == [train.paths[1], train.paths[0]]
    assert torch.equal(view[0][0], train[1][0].float() * 2)


@pytest.mark.parametrize("source", ["builtin:digits", "folder"])
def test_splits_survive_pickling(source: str, tmp_path: Path) -> None:
    if source == "folder":
        grey_images(tmp_path / "a", 5)
        grey_images(tmp_path / "b", 5, seed=7)
        source = str(tmp_path)
    split = open_dataset(source).splits["test"].subset([1, 0]).with_transform(double)
    copy = pickle.loads(pickle.dumps(split))
    assert type(copy) is type(split) and len(copy) == 2
    assert np.array_equal(copy.labels, split.labels)
    for i in range(2):
        assert torch.equal(copy[i][0], split[i][0]) and copy[i][1] == split[i][1]


@pytest.fixture
def logged_folder(tmp_path: Path) -> tuple[DatasetBundle, Path]:
    for cls in ("a", "b"):
        grey_images(tmp_path / "data" / cls, 10, seed=ord(cls))
    log = tmp_path / "run" / "skipped.jsonl"
    return open_dataset(tmp_path / "data", skip_log=log), log


def read_log(log: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_file_deleted_after_opening_is_replaced_and_logged(logged_folder: tuple[DatasetBundle, Path]) -> None:
    bundle, log = logged_folder
    train = bundle.splits["train"]
    expected_next = train[4]
    Path(train.paths[3]).unlink()
    image, label = train[3]
    assert torch.equal(image, expected_next[0]) and label == expected_next[1]
    assert read_log(log) == [{"file": train.paths[3], "reason": "missing file", "detail": "no such file"}]
    train[3]
    assert bundle.splits["train"].subset([3, 4])[0][1] == expected_next[1]
    assert len(read_log(log)) == 1  # logged once per process, not on every access nor by every view
    Path(train.paths[-1]).unlink()
    assert torch.equal(train[len(train) - 1][0], train[0][0])  # the last item wraps around


def test_a_file_rewritten_to_another_size_is_replaced(logged_folder: tuple[DatasetBundle, Path]) -> None:
    bundle, log = logged_folder
    test = bundle.splits["test"]
    corpus.grey_png(Path(test.paths[0]), size=(50, 50))
    assert test[0][0].shape == (1, 12, 10)
    assert [r["reason"] for r in read_log(log)] == ["size changed"]
    corpus.text_as_image(Path(test.paths[1]))
    test[1]
    assert [r["reason"] for r in read_log(log)] == ["size changed", "not an image"]


def test_dataloader_workers_share_the_skip_log(logged_folder: tuple[DatasetBundle, Path]) -> None:
    bundle, log = logged_folder
    train = bundle.splits["train"]
    for path in train.paths[:2]:
        Path(path).unlink()
    loader = DataLoader(train, batch_size=4, num_workers=2)
    seen = sum(len(labels) for _, labels in loader)
    assert seen == len(train)  # no crash, every batch full
    records = read_log(log)
    assert {r["file"] for r in records} == set(train.paths[:2])
    assert all(r["reason"] == "missing file" for r in records)


def test_a_split_whose_every_file_vanished_raises(logged_folder: tuple[DatasetBundle, Path]) -> None:
    bundle, log = logged_folder
    val = bundle.splits["val"]
    for path in val.paths:
        Path(path).unlink()
    with pytest.raises(DataError, match=f"none of the {len(val)} files.*{log.name}"):
        val[0]


# ---- stratified splitting ---------------------------------------------------------------------------------


def test_stratified_split_is_exact_disjoint_and_seeded() -> None:
    labels = np.repeat(np.arange(4), [1, 2, 3, 94])
    parts = stratified_split(labels, [0.7, 0.1, 0.2], seed=0)
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(labels)))  # disjoint, covering
    per_class = [[int((labels[p] == c).sum()) for p in parts] for c in range(4)]
    assert per_class[0] == [1, 0, 0]  # one image: train
    assert per_class[1] == [1, 0, 1]  # two: train and the larger of the rest
    assert per_class[2] == [1, 1, 1]  # three: one in each
    assert per_class[3] == [66, 9, 19]  # largest remainders: 65.8, 9.4, 18.8
    same = stratified_split(labels, [0.7, 0.1, 0.2], seed=0)
    other = stratified_split(labels, [0.7, 0.1, 0.2], seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(parts, same, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=True))
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split(labels, [0.5, 0.2], seed=0)


def test_every_class_of_three_or_more_reaches_every_split() -> None:
    labels = np.repeat(np.arange(20), np.arange(3, 23))
    for part in stratified_split(labels, [0.7, 0.1, 0.2], seed=4):
        assert set(labels[part].tolist()) == set(range(20))
