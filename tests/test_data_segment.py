"""Segmentation data, 2D: mask folders (palette, grey, RGB + classes.txt) and COCO polygons / RLE on small
hand-written (and broken) files, open_segmentation's splits, the shapes generator, mask transforms and
collation. Volumes are in test_data_segment_volumes.py."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from cnnlab.data.detection.shapes import render_scene
from cnnlab.data.mask_transforms import (
    RandomPadCrop,
    build_mask_transform,
    dataset_mean_std,
    segmentation_collate,
)
from cnnlab.data.segmentation import (
    IGNORE_INDEX,
    SegmentationSplit,
    detect_segmentation_format,
    make_segment_shapes,
    open_segmentation,
    shapes_sample,
)
from cnnlab.data.segmentation.coco_masks import render_mask
from cnnlab.data.segmentation.shapes import MAX_OBJECTS_2D, SIZE_RANGE_2D
from cnnlab.data.skips import SkipReport
from cnnlab.data.stratify import SplitOptions
from cnnlab.errors import ConfigError, DataError
from tests import data_corpus as corpus

# ---- helpers -----------------------------------------------------------------------------------------


def picture(path: Path, size: tuple[int, int] = (8, 8), seed: int = 0, grey: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return (corpus.grey_png if grey else corpus.rgb_png)(path, size=size, seed=seed)


def mask_png(path: Path, ids: np.ndarray, mode: str = "P") -> Path:
    """Class ids as a palette ("P") or grey ("L") PNG; an [H, W, 3] array as an RGB PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = np.asarray(ids, dtype=np.uint8)
    image = Image.fromarray(ids)
    if mode == "P":
        image = Image.frombytes("P", (ids.shape[1], ids.shape[0]), ids.tobytes())
        image.putpalette([v for k in range(256) for v in (k, 255 - k, (7 * k) % 256)])
    image.save(path)
    return path


def squares(value: int, size: int = 8) -> np.ndarray:
    """Background with a 4x4 square of ``value`` at rows 2..5, columns 1..4."""
    ids = np.zeros((size, size), dtype=np.uint8)
    ids[2:6, 1:5] = value
    return ids


def pair(root: Path, stem: str, ids: np.ndarray, *, seed: int = 0, mode: str = "P", grey: bool = False) -> None:
    picture(root / "images" / f"{stem}.png", ids.shape[:2], seed, grey)
    mask_png(root / "masks" / f"{stem}.png", ids, mode)


def reasons(skipped: SkipReport) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for example in skipped.examples:
        found.setdefault(example["reason"], []).append(Path(example["file"]).name)
    return found


# ---- mask folders ------------------------------------------------------------------------------------


def test_mask_folder_reads_palette_and_grey_masks(tmp_path: Path) -> None:
    palette = squares(2)
    palette[0, :] = IGNORE_INDEX  # a VOC-style boundary
    pair(tmp_path, "a", palette)
    pair(tmp_path, "b", squares(1), mode="L", grey=True)
    pair(tmp_path, "c", np.zeros((8, 8), np.uint8), seed=3)  # all background: kept
    bundle = open_segmentation(tmp_path, options=SplitOptions(val_fraction=0.0, test_fraction=0.0))
    assert bundle.task == "segment" and bundle.class_names == ["background", "1", "2"]
    assert bundle.channels == 3 and bundle.native_size == (8, 8) and bundle.skipped.total == 0
    train = bundle.splits["train"]
    assert train.spatial_dims == 2 and len(train) == 3 and train.empty_count() == 1
    items = {Path(r.image).stem: i for i, r in enumerate(train.records)}
    image, target = train[items["a"]]
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.uint8 and image.shape == (3, 8, 8)
    assert isinstance(target["mask"], tv_tensors.Mask) and target["mask"].dtype == torch.int64
    assert target["mask"].numpy().tolist() == palette.tolist()
    assert target["spacing"] == (1.0, 1.0) and target["index"] == train.indices[items["a"]]
    assert train[items["b"]][0].shape == (3, 8, 8)  # grey repeated: not every image is grey
    assert train.class_counts() == [3, 1, 1]
    assert train.pixel_counts() == [64 * 3 - 32 - 8, 16, 16]
    assert train.statistics()["empty_masks"] == 1


def test_mask_folder_skips_and_counts_every_bad_pair(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("background\ncat\ndog\n\n")
    pair(tmp_path, "good", squares(1))
    picture(tmp_path / "images" / "lonely.png")  # no mask
    mask_png(tmp_path / "masks" / "orphan.png", squares(1))  # no image
    pair(tmp_path, "small", squares(1))
    mask_png(tmp_path / "masks" / "small.png", squares(1, size=6))  # size mismatch
    pair(tmp_path, "seven", squares(7))  # class 7, 3 declared
    pair(tmp_path, "rgb", np.stack([squares(1)] * 3, axis=-1), mode="RGB")  # no declared colours
    picture(tmp_path / "images" / "cut.png")
    corpus.truncated_png(tmp_path / "masks" / "cut.png")
    picture(tmp_path / "images" / "lossy.png")
    corpus.rgb_jpeg(tmp_path / "masks" / "lossy.jpg", size=(8, 8))
    corpus.text_as_image(tmp_path / "images" / "text.png")
    mask_png(tmp_path / "masks" / "text.png", squares(1))
    pair(tmp_path, "twice", squares(2))
    mask_png(tmp_path / "masks" / "twice.bmp", squares(2))  # a second mask with the same stem
    bundle = open_segmentation(tmp_path, options=SplitOptions(val_fraction=0.0, test_fraction=0.0))
    assert sorted(Path(r.image).stem for r in bundle.splits["train"].records) == ["good", "twice"]
    assert bundle.class_names == ["background", "cat", "dog"]
    assert reasons(bundle.skipped) == {
        "duplicate name": ["twice.png"],
        "no image": ["orphan.png"],
        "no mask": ["lonely.png"],
        "size mismatch": ["small.png"],
        "unknown class": ["seven.png"],
        "multi-channel mask": ["rgb.png"],
        "truncated": ["cut.png"],
        "lossy mask": ["lossy.jpg"],
        "not an image": ["text.png"],
    }
    details = {e["reason"]: e["detail"] for e in bundle.skipped.examples}
    assert "class id 7 in 16 pixels; classes.txt declares 3 (0..2)" in details["unknown class"]
    assert "mask 6x6, image 8x8" in details["size mismatch"]
    assert "classes.txt" in details["multi-channel mask"]


def test_rgb_masks_map_declared_colours_and_refuse_others(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("background 0 0 0\nroad 128 64 128\ncar 0 0 142\n")
    colours = np.zeros((8, 8, 3), np.uint8)
    colours[2:6, 1:5] = (128, 64, 128)
    colours[0, 0] = (0, 0, 142)
    pair(tmp_path, "a", colours, mode="RGB")
    odd = colours.copy()
    odd[7, 7] = (1, 2, 3)
    pair(tmp_path, "b", odd, mode="RGB")
    pair(tmp_path, "c", squares(2))  # single-channel masks stay class ids
    bundle = open_segmentation(tmp_path, options=SplitOptions(val_fraction=0.0, test_fraction=0.0))
    train = bundle.splits["train"]
    assert [Path(r.image).stem for r in train.records] == ["a", "c"]
    expected = squares(1)
    expected[0, 0] = 2
    assert train[0][1]["mask"].numpy().tolist() == expected.tolist()
    assert bundle.skipped.counts == {"unknown colour": 1}
    assert "colour (1, 2, 3) in 1 pixels is not declared in classes.txt" in bundle.skipped.examples[0]["detail"]
    assert pickle.loads(pickle.dumps(train))[0][1]["mask"].numpy().tolist() == expected.tolist()


def test_malformed_classes_file_and_nothing_usable_are_data_errors(tmp_path: Path) -> None:
    pair(tmp_path, "a", squares(1))
    (tmp_path / "classes.txt").write_text("background\n\ncat\n")
    with pytest.raises(DataError, match=r"classes.txt line 2 is empty"):
        open_segmentation(tmp_path)
    (tmp_path / "classes.txt").write_text("background\ncat 300 0 0\n")
    with pytest.raises(DataError, match=r"line 2: colour \[300, 0, 0\]"):
        open_segmentation(tmp_path)
    (tmp_path / "classes.txt").unlink()
    mask_png(tmp_path / "masks" / "a.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="not one foreground pixel"):
        open_segmentation(tmp_path)
    (tmp_path / "masks" / "a.png").unlink()
    with pytest.raises(DataError, match=r"read as masks, 0 usable items \(skipped: 1 no mask\)"):
        open_segmentation(tmp_path)
    with pytest.raises(ConfigError, match="segmentation format must be one of"):
        open_segmentation(tmp_path, fmt="voc")


def test_declared_splits_are_kept_and_missing_ones_carved_with_the_seed(tmp_path: Path) -> None:
    for i in range(20):
        pair(tmp_path / "train", f"t{i:02d}", squares(1 + i % 2), seed=i)
    for i in range(3):
        pair(tmp_path / "valid", f"v{i}", squares(2), seed=50 + i)
    (tmp_path / "classes.txt").write_text("background\nsmall\nlarge\n")
    bundle = open_segmentation(tmp_path, options=SplitOptions(seed=1, test_fraction=0.25))
    splits = bundle.splits
    assert [len(splits[s]) for s in ("train", "val", "test")] == [16, 3, 4]  # 25% of each class of 10
    assert {Path(r.image).stem[0] for r in splits["val"].records} == {"v"}
    assert bundle.split_policy.startswith("dataset (train/val) + stratified test 25% of train (seed 1)")
    assert splits["test"].class_counts() == [4, 2, 2]  # both classes reach test
    again = open_segmentation(tmp_path, options=SplitOptions(seed=1, test_fraction=0.25))
    assert again.splits["test"].indices.tolist() == splits["test"].indices.tolist()
    other = open_segmentation(tmp_path, options=SplitOptions(seed=2, test_fraction=0.25))
    assert other.splits["test"].indices.tolist() != splits["test"].indices.tolist()
    indices = np.concatenate([splits[s].indices for s in ("train", "val", "test")])
    assert sorted(indices.tolist()) == list(range(23))


def test_detect_segmentation_format_by_layout(tmp_path: Path) -> None:
    pair(tmp_path / "m" / "train", "a", squares(1))
    (tmp_path / "v" / "images").mkdir(parents=True)
    np.save(tmp_path / "v" / "images" / "a.npy", np.zeros((2, 2, 2)))
    coco = coco_file(tmp_path / "c", [{"segmentation": [[0, 0, 4, 0, 4, 4]]}])
    boxes = coco_file(tmp_path / "d", [{"segmentation": []}])
    picture(tmp_path / "yolo" / "images" / "a.png")
    (tmp_path / "yolo" / "labels").mkdir()
    picture(tmp_path / "folder" / "cat" / "a.png")
    found = {p: detect_segmentation_format(tmp_path / p) for p in ("m", "v", "yolo", "folder", "nothing")}
    assert found == {"m": "masks", "v": "volumes", "yolo": None, "folder": None, "nothing": None}
    assert detect_segmentation_format(coco) == "coco" and detect_segmentation_format(coco.parent) == "coco"
    assert detect_segmentation_format(boxes) is None
    # open_dataset: a COCO file is a box set unless the task asks for masks; mask folders are masks either way.
    from cnnlab.data import open_dataset

    both = coco_file(tmp_path / "b", [{"segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]], "bbox": [1, 1, 4, 4]}])
    assert open_dataset(both).task == "detect" and open_dataset(both, task="segment").task == "segment"
    assert open_dataset(tmp_path / "m").task == "segment"


# ---- COCO --------------------------------------------------------------------------------------------


def coco_file(root: Path, annotations: list[dict], size: tuple[int, int] = (8, 8)) -> Path:
    """annotations.json over images/a.png; each annotation gets an id, image 1 and category 3 unless given."""
    picture(root / "images" / "a.png", size)
    full = [{"id": k + 1, "image_id": 1, "category_id": 3, "iscrowd": 0} | a for k, a in enumerate(annotations)]
    data = {
        "images": [{"id": 1, "file_name": "a.png", "width": size[1], "height": size[0]}],
        "annotations": full,
        "categories": [{"id": 3, "name": "cat"}, {"id": 1, "name": "dog"}],
    }
    path = root / "annotations.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_polygons_rle_and_crowd_paint_one_mask(tmp_path: Path) -> None:
    square = [1, 1, 5, 1, 5, 5, 1, 5]  # pixels 1..4 (pycocotools rasterises the polygon's inside)
    rle_counts = [8 * 6, 2, 6, 2, 6]  # column-major runs: columns 6 and 7, rows 0..1
    path = coco_file(
        tmp_path,
        [
            {"segmentation": [square], "category_id": 1},
            {"segmentation": [[3, 3, 7, 3, 7, 7, 3, 7]]},  # painted over the dog where they overlap
            {"segmentation": {"counts": rle_counts, "size": [8, 8]}, "category_id": 1},
            {"segmentation": {"counts": "R11", "size": [8, 8]}, "iscrowd": 1},  # compressed RLE, crowd -> 255
            {"segmentation": [[0, 0, 1, 1]]},  # fewer than 3 points
            {"segmentation": {"counts": [1, 2], "size": [8, 8]}},  # runs do not cover the image
            {"segmentation": [square], "category_id": 9},
            {"segmentation": [square], "image_id": 5},
        ],
    )
    bundle = open_segmentation(path, options=SplitOptions(val_fraction=0.0, test_fraction=0.0))
    assert bundle.class_names == ["background", "dog", "cat"]
    assert bundle.skipped.counts == {"bad annotation": 2, "unknown category": 1, "unknown image": 1}
    split = bundle.splits["train"]
    mask = split[0][1]["mask"].numpy()
    crowd = render_mask([(1, {"counts": "R11", "size": [8, 8]})], 8, 8) == 1
    assert 0 < crowd.sum() < 64
    expected = np.zeros((8, 8), np.int64)
    expected[1:5, 1:5] = 1
    expected[3:7, 3:7] = 2
    expected[0:2, 6:8] = 1
    expected[crowd] = IGNORE_INDEX
    assert mask.tolist() == expected.tolist()
    assert split.class_counts() == [1, 1, 1] and split.records[0].pixels is None
    assert split.pixel_counts() == [int((expected == k).sum()) for k in range(3)]
    assert render_mask([], 2, 3).shape == (2, 3)
    with_areas = coco_file(tmp_path / "areas", [{"segmentation": [square], "area": 16.0, "category_id": 1}] * 2)
    split = open_segmentation(with_areas, options=SplitOptions(val_fraction=0.0, test_fraction=0.0)).splits["train"]
    assert split.records[0].pixels.tolist() == [32, 32, 0]  # from the areas, no mask rendered (overlaps twice)


# ---- the shapes generator ----------------------------------------------------------------------------


def test_shapes_2d_are_deterministic_exact_and_open(tmp_path: Path) -> None:
    first = make_segment_shapes(tmp_path / "a", n_train=4, n_val=2, n_test=0, size=48, seed=5)
    second = make_segment_shapes(tmp_path / "b", n_train=4, n_val=2, n_test=0, size=48, seed=5)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert Path("classes.txt") in files and Path("val/masks/00001.png") in files and len(files) == 13
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    with Image.open(first / "val" / "masks" / "00001.png") as im:
        assert im.mode == "P"
        ids = np.asarray(im)
    image, _, labels, owner = render_scene(
        np.random.default_rng([5, 1, 1]), 48, MAX_OBJECTS_2D, plain=False, size_range=SIZE_RANGE_2D
    )
    assert ids.tolist() == np.where(owner >= 0, labels[owner] + 1, 0).tolist()
    assert np.asarray(Image.open(first / "val" / "images" / "00001.png")).tolist() == image.tolist()
    bundle = open_segmentation(first)
    assert bundle.class_names == ["background", "circle", "square", "triangle", "star"]
    assert max(max(r.labels) for r in bundle.splits["train"].records) <= 4
    assert shapes_sample(1, size=48, seed=5, part=1)[1].tolist() == ids.tolist()
    with pytest.raises(DataError, match="not empty"):
        make_segment_shapes(first, n_train=1)
    with pytest.raises(ConfigError, match="fmt for 2D"):
        make_segment_shapes(tmp_path / "c", n_train=1, fmt="nifti")


# ---- transforms and batching -------------------------------------------------------------------------


def painted(size: tuple[int, int] = (32, 40)) -> tuple[tv_tensors.Image, dict]:
    """An image that is 200 where the mask is 1 and 20 elsewhere, with an off-centre square."""
    ids = np.zeros(size, np.int64)
    ids[5:17, 3:15] = 1
    image = np.where(ids == 1, 200, 20).astype(np.uint8)
    target = {"mask": tv_tensors.Mask(torch.from_numpy(ids)), "spacing": (1.0, 1.0), "index": 7}
    return tv_tensors.Image(torch.from_numpy(image)[None]), target


@pytest.mark.parametrize("augment", ["none", "light", "strong"])
def test_train_transform_keeps_the_mask_on_its_pixels(augment: str) -> None:
    torch.manual_seed(0)
    transform = build_mask_transform(input_size=[1, 24, 24], mean=[0.0], std=[1.0], train=True, augment=augment)
    for _ in range(20):
        image, target = transform(*painted())
        mask = target["mask"]
        assert image.shape == (1, 24, 24) and image.dtype == torch.float32 and mask.shape == (24, 24)
        assert target["index"] == 7 and target["spacing"] == (1.0, 1.0)
        pixels = image[0].as_subclass(torch.Tensor)
        if augment != "strong":  # colour jitter moves the values, not the pixels
            assert (pixels[mask == 255] == 0).all()
        inside, outside = pixels[mask == 1], pixels[mask == 0]
        if inside.numel() > 8:  # edges blur when resized, and jitter scales contrast; the square stays bright
            assert inside.mean() > outside.mean() + (0.05 if augment == "strong" else 0.2)


def test_pad_crop_and_flip_are_exact() -> None:
    image, target = painted((10, 12))
    torch.manual_seed(3)
    grown, moved = RandomPadCrop([16, 8])(image, target)
    assert grown.shape == (1, 16, 8) and isinstance(moved["mask"], tv_tensors.Mask)
    real = moved["mask"] != IGNORE_INDEX
    assert (grown[0][~real] == 0).all() and (grown[0][real] == torch.where(moved["mask"][real] == 1, 200, 20)).all()
    flip = build_mask_transform(input_size=[1, 10, 12], mean=[0.0], std=[1 / 255], train=True, augment="light")
    flip.steps = [s for s in flip.steps if type(s).__name__ in ("_HFlip", "Normalise")]
    torch.manual_seed(0)
    flips = [flip(*painted((10, 12))) for _ in range(8)]
    for out, moved in flips:
        assert out.round().to(torch.int64)[0].tolist() == torch.where(moved["mask"] == 1, 200, 20).tolist()
    assert {int(moved["mask"][5, 0]) for _, moved in flips} == {0, 1}  # some flipped, some not


def test_eval_transform_keeps_the_size_and_normalises() -> None:
    image, target = painted((30, 50))
    transform = build_mask_transform(input_size=[3, 16, 16], mean=[0.5] * 3, std=[0.25] * 3, train=False)
    out, kept = transform(image, target)
    assert out.shape == (3, 30, 50) and kept["mask"].tolist() == target["mask"].tolist()
    assert torch.allclose(out[:, 0, 0], torch.full((3,), (20 / 255 - 0.5) / 0.25))
    assert transform(image).shape == (3, 30, 50)  # an image alone
    with pytest.raises(ConfigError, match=r"\[C, H, W\]"):
        build_mask_transform(input_size=[3, 16], mean=[0.5] * 3, std=[0.25] * 3, train=False)
    with pytest.raises(ConfigError, match="--augment 'mosaic'"):
        build_mask_transform(input_size=[3, 8, 8], mean=[0] * 3, std=[1] * 3, train=True, augment="mosaic")


def test_collate_pads_images_with_0_and_masks_with_255() -> None:
    small, big = painted((4, 6)), painted((5, 3))
    images, batch = segmentation_collate([small, big])
    assert images.shape == (2, 1, 5, 6) and images.dtype == torch.float32
    assert batch["masks"].shape == (2, 5, 6) and batch["masks"].dtype == torch.int64
    assert (batch["masks"][0, 4] == 255).all() and (batch["masks"][1, :, 3:] == 255).all()
    assert (images[0, 0, 4] == 0).all() and (images[1, 0, :, 3:] == 0).all()
    assert batch["spacing"].dtype == torch.float64 and batch["spacing"].shape == (2, 2)
    assert batch["index"].tolist() == [7, 7]


def test_split_views_mean_std_and_a_file_that_went_bad(tmp_path: Path) -> None:
    for i in range(3):
        pair(tmp_path, f"{i}", squares(1 + i), seed=i, grey=True)
    log = tmp_path / "skips.jsonl"
    bundle = open_segmentation(tmp_path, options=SplitOptions(val_fraction=0, test_fraction=0), skip_log=log)
    split = bundle.splits["train"]
    assert isinstance(split, SegmentationSplit) and bundle.channels == 1 and split.channels == 1
    mean, std = dataset_mean_std(split)
    pixels = np.concatenate([np.asarray(Image.open(r.image), np.float64).ravel() / 255 for r in split.records])
    assert np.allclose(mean, [pixels.mean()]) and np.allclose(std, [pixels.std()])
    assert split.subset([2, 0]).class_counts() == [2, 1, 0, 1] and len(split.subset([True, False, True])) == 2
    os.unlink(split.records[1].mask)
    assert [split[i][1]["index"] for i in range(3)] == [0, 2, 2]
    assert [json.loads(line)["reason"] for line in log.read_text().splitlines()] == ["missing file"]
