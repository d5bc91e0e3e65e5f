"""Detection data: box cleaning, COCO / YOLO / VOC readers on hand-written (and broken) files,
open_detection's splits, DetectionSplit with v2 transforms, converters, and the shapes generator."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from cnnlab.data.detection import (
    BoxRecord,
    DetectionSplit,
    detect_format,
    open_detection,
    read_source,
)
from cnnlab.data.detection.validate import clean_boxes
from cnnlab.data.skips import SkipReport
from cnnlab.data.stratify import SplitOptions
from cnnlab.errors import DataError
from tests import data_corpus as corpus

# ---- helpers -----------------------------------------------------------------------------------------


def png(path: Path, size: tuple[int, int] = (24, 32), seed: int = 0, grey: bool = False) -> Path:
    """A noise PNG of (H, W) ``size``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return (corpus.grey_png if grey else corpus.rgb_png)(path, size=size, seed=seed)


def details(skipped: SkipReport, reason: str) -> list[str]:
    return [e["detail"] for e in skipped.examples if e["reason"] == reason]


def by_name(records: list[BoxRecord]) -> dict[str, BoxRecord]:
    return {Path(r.image).name: r for r in records}


def coco_json(path: Path, images: list[dict], annotations: list[dict], categories: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def ann(ann_id: int, image_id: int, cat: int, bbox: list[float], **extra: object) -> dict:
    return {"id": ann_id, "image_id": image_id, "category_id": cat, "bbox": bbox, **extra}


def simple_coco(root: Path, n: int, size: tuple[int, int] = (24, 32), classes: int = 2, grey: bool = False) -> Path:
    """One unsplit COCO file with ``n`` images, a box of class i % ``classes`` in each."""
    images = [
        {"id": i + 1, "file_name": png(root / "images" / f"{i:02d}.png", size, i, grey).name, "width": size[1]}
        | {"height": size[0]}
        for i in range(n)
    ]
    anns = [ann(i + 1, i + 1, 1 + i % classes, [1, 2, 5, 6]) for i in range(n)]
    cats = [{"id": c + 1, "name": f"c{c}"} for c in range(classes)]
    return coco_json(root / "annotations.json", images, anns, cats)


# ---- box cleaning ------------------------------------------------------------------------------------


def test_clean_boxes_clips_drops_and_counts() -> None:
    boxes = np.array(
        [
            [10, 10, 20, 20],  # good
            [-5, 40, 30, 60],  # partly outside: clipped to [0, 40, 30, 50]
            [5, 5, 5, 20],  # zero width
            [30, 10, 20, 20],  # x2 < x1
            [120, 10, 130, 20],  # entirely right of the image
            [1, 1, 10, 10],  # class 7 of 3
            [np.nan, 1, 2, 3],
            [99.5, 0, 110, 10],  # half a pixel wide once clipped
            [0, 0, 100.004, 50],  # rounding overshoot: clipped silently
        ],
        dtype=np.float32,
    )
    labels = np.array([0, 1, 2, 0, 1, 7, 0, 1, 2])
    where = [f"labels/a.txt line {i + 1}" for i in range(len(boxes))]
    skipped = SkipReport()
    kept, kept_labels = clean_boxes(boxes, labels, 100, 50, 3, where, skipped)
    np.testing.assert_array_equal(kept, [[10, 10, 20, 20], [0, 40, 30, 50], [0, 0, 100, 50]])
    assert kept.dtype == np.float32 and kept_labels.tolist() == [0, 1, 2]
    assert skipped.counts == {"bad box": 6, "clipped box": 1}
    bad = details(skipped, "bad box")
    assert bad[0].startswith("labels/a.txt line 3: zero area")
    assert bad[1].startswith("labels/a.txt line 4: negative size")
    assert bad[2].startswith("labels/a.txt line 5: outside the image")
    assert bad[3] == "labels/a.txt line 6: unknown class id 7 (the data declares 3)"
    assert bad[4].startswith("labels/a.txt line 7: coordinates not finite")
    assert bad[5].startswith("labels/a.txt line 8: zero area")
    assert details(skipped, "clipped box")[0].startswith("labels/a.txt line 2: [-5, 40, 30, 60] clipped")


def test_clean_boxes_one_place_for_all_and_empty_input() -> None:
    skipped = SkipReport()
    kept, labels = clean_boxes(np.zeros((0, 4)), np.zeros(0), 10, 10, 2, "x.xml", skipped)
    assert kept.shape == (0, 4) and labels.shape == (0,) and skipped.total == 0
    clean_boxes(np.array([[0, 0, 1, 1], [3, 3, 3, 3]]), np.array([0, 1]), 10, 10, 2, "x.xml", skipped)
    assert skipped.examples[0]["file"] == "x.xml object 2"
    assert details(skipped, "bad box")[0].startswith("x.xml object 2: zero area")


# ---- COCO --------------------------------------------------------------------------------------------


@pytest.fixture
def coco_dir(tmp_path: Path) -> Path:
    """annotations/instances_{train,val}.json, images in train/ and images/val/, with every kind of trouble."""
    root = tmp_path / "coco"
    png(root / "train" / "a.png", (20, 30))
    png(root / "train" / "b.png", (20, 30), seed=1)
    corpus.truncated_png(png(root / "train" / "cut.png", (20, 30)))
    corpus.rotated_jpeg(root / "train" / "turned.jpg")  # 20x40 stored, EXIF 6: 40 high, 20 wide
    png(root / "images" / "val" / "v.png", (16, 16), grey=True)
    cats = [{"id": 7, "name": "kite"}, {"id": 1, "name": "person"}, {"id": 3, "name": "car"}]
    coco_json(
        root / "annotations" / "instances_train.json",
        [
            {"id": 10, "file_name": "a.png", "width": 30, "height": 20},
            {"id": 11, "file_name": "b.png", "width": 30, "height": 20},  # no annotations: a negative
            {"id": 12, "file_name": "cut.png", "width": 30, "height": 20},
            {"id": 13, "file_name": "gone.png", "width": 30, "height": 20},
            {"id": 14, "file_name": "turned.jpg", "width": 40, "height": 20},  # the raw size: a mismatch
            {"file_name": "no-id.png"},
        ],
        [
            ann(1, 10, 7, [2, 3, 10, 5]),  # kite -> class 2
            ann(2, 10, 1, [25, 15, 10, 10]),  # person, clipped to [25, 15, 30, 20]
            ann(3, 10, 3, [1, 1, 5, 5], iscrowd=1),
            ann(4, 99, 1, [1, 1, 5, 5]),  # unknown image
            ann(5, 10, 2, [1, 1, 5, 5]),  # unknown category
            ann(6, 10, 3, [1, 1, 0, 5]),  # zero width
            ann(7, 10, 3, [1, 1, 5]),  # malformed bbox
            ann(8, 14, 3, [0, 0, 20, 40]),
        ],
        cats,
    )
    coco_json(
        root / "annotations" / "instances_val.json",
        [{"id": 1, "file_name": "v.png", "width": 16, "height": 16}],
        [ann(1, 1, 3, [4.5, 4.25, 8, 8])],
        cats,
    )
    (root / "annotations" / "captions_train.json").write_text("{}")  # other COCO files are ignored
    return root


def test_coco_reader_maps_categories_and_counts_every_problem(coco_dir: Path) -> None:
    source, skipped = read_source(coco_dir)
    assert source.class_names == ["person", "car", "kite"]  # sorted by id 1, 3, 7
    assert list(source.splits) == ["train", "val"]
    train = by_name(source.splits["train"])
    assert sorted(train) == ["a.png", "b.png", "turned.jpg"]
    np.testing.assert_array_equal(train["a.png"].boxes, [[2, 3, 12, 8], [25, 15, 30, 20]])
    assert train["a.png"].labels.tolist() == [2, 0]
    assert train["b.png"].boxes.shape == (0, 4)
    assert (train["turned.jpg"].width, train["turned.jpg"].height) == (20, 40)
    np.testing.assert_array_equal(train["turned.jpg"].boxes, [[0, 0, 20, 40]])
    val = source.splits["val"][0]
    assert val.grey and (val.width, val.height) == (16, 16)
    np.testing.assert_allclose(val.boxes, [[4.5, 4.25, 12.5, 12.25]])
    assert skipped.counts == {
        "clipped box": 1,
        "crowd box": 1,
        "unknown image": 1,
        "unknown category": 1,
        "bad box": 1,
        "bad annotation": 1,
        "bad image entry": 1,
        "truncated": 1,
        "missing file": 1,
        "size mismatch": 1,
    }
    assert details(skipped, "unknown category")[0].startswith("instances_train.json annotation id 5")
    assert "category_id 2 is not declared (declared: 1, 3, 7)" in details(skipped, "unknown category")[0]
    assert "zero area" in details(skipped, "bad box")[0]
    assert "the file says 40x20 (W x H), the image is 20x40" in details(skipped, "size mismatch")[0]
    assert any(e["file"].endswith("gone.png") for e in skipped.examples if e["reason"] == "missing file")


def test_coco_malformed_json_names_file_and_position(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"images": [],\n "categories": [\n  {"id": 1 "name": "a"}]}')
    with pytest.raises(
        DataError, match=r"broken\.json: not valid JSON \(Expecting ',' delimiter at line 3 column 12\)"
    ):
        read_source(bad)
    bad.write_text('{"images": {}, "categories": []}')
    with pytest.raises(DataError, match=r"broken\.json: field 'images' must be a list, not an object"):
        read_source(bad)


def test_coco_single_file_and_roboflow_layout(tmp_path: Path) -> None:
    file = simple_coco(tmp_path / "one", 3)
    source, _ = read_source(file)
    assert list(source.splits) == ["all"] and len(source.splits["all"]) == 3
    assert detect_format(tmp_path / "one") == "coco"
    rf = tmp_path / "rf"
    png(rf / "train" / "x.png")
    coco_json(rf / "train" / "_annotations.coco.json", [{"id": 0, "file_name": "x.png"}], [], [{"id": 0, "name": "a"}])
    source, _ = read_source(rf)
    assert list(source.splits) == ["train"] and source.splits["train"][0].image == str(rf / "train" / "x.png")


# ---- YOLO --------------------------------------------------------------------------------------------


@pytest.fixture
def yolo_dir(tmp_path: Path) -> Path:
    root = tmp_path / "yolo"
    for name, size in (("a.png", (20, 40)), ("b.png", (20, 40)), ("nolabel.png", (10, 10))):
        png(root / "images" / "train" / name, size)
    png(root / "images" / "val" / "v.png", (10, 10))
    labels = root / "labels" / "train"
    labels.mkdir(parents=True)
    (labels / "a.txt").write_text(
        "\n".join(
            [
                "0 0.5 0.5 0.5 0.5",  # [10, 5, 30, 15]
                "1 0.5 0.5 0.2",  # 4 values
                "cat 0.5 0.5 0.2 0.2",  # not numbers
                "1.5 0.5 0.5 0.2 0.2",  # class not an integer
                "5 0.5 0.5 0.2 0.2",  # unknown class
                "",
                "1 0.95 0.5 0.2 0.2",  # right edge at 1.05: clipped to [34, 8, 40, 12]
                "1 0.1 0.1 0.5 0.1 0.5 0.5",  # a polygon: its box [4, 2, 20, 10]
                "0 0.5 0.5 0 0.3",  # zero width
            ]
        )
    )
    (labels / "b.txt").write_text("")  # a negative, not a problem
    (root / "labels" / "val").mkdir()
    (root / "labels" / "val" / "v.txt").write_text("1 0.5 0.5 1 1\n")
    (root / "data.yaml").write_text(
        "path: /nowhere/else\ntrain: images/train\nval: images/val\nnames: {0: cat, 1: dog}\n"
    )
    return root


def test_yolo_reader_lines_and_missing_labels(yolo_dir: Path) -> None:
    assert detect_format(yolo_dir) == "yolo" and detect_format(yolo_dir / "data.yaml") == "yolo"
    source, skipped = read_source(yolo_dir)
    assert source.class_names == ["cat", "dog"]
    train = by_name(source.splits["train"])
    np.testing.assert_allclose(train["a.png"].boxes, [[10, 5, 30, 15], [34, 8, 40, 12], [4, 2, 20, 10]], atol=1e-4)
    assert train["a.png"].labels.tolist() == [0, 1, 1]
    assert train["b.png"].boxes.shape == (0, 4) and train["nolabel.png"].boxes.shape == (0, 4)
    np.testing.assert_allclose(source.splits["val"][0].boxes, [[0, 0, 10, 10]])
    assert skipped.counts == {"bad line": 3, "bad box": 2, "clipped box": 1, "missing label file": 1}
    lines = details(skipped, "bad line")
    assert lines[0].startswith("labels/train/a.txt line 2: 4 values, expected 5")
    assert lines[1] == "labels/train/a.txt line 3: not numbers: 'cat 0.5 0.5 0.2 0.2'"
    assert lines[2] == "labels/train/a.txt line 4: the class id '1.5' is not an integer"
    assert details(skipped, "bad box")[0].startswith(
        "labels/train/a.txt line 5: unknown class id 5 (the data declares 2"
    )
    assert details(skipped, "bad box")[1].startswith("labels/train/a.txt line 9: zero area")
    assert details(skipped, "clipped box")[0].startswith("labels/train/a.txt line 7:")
    missing = next(e for e in skipped.examples if e["reason"] == "missing label file")
    assert missing["file"] == str(yolo_dir / "labels" / "train" / "nolabel.txt")


def test_yolo_yaml_errors(tmp_path: Path, yolo_dir: Path) -> None:
    yaml_file = yolo_dir / "data.yaml"
    yaml_file.write_text("train: images/train\nnames: [a, b\n")
    with pytest.raises(DataError, match=r"data\.yaml: not valid YAML .* at line 3 column 1"):
        read_source(yolo_dir)
    yaml_file.write_text("train: images/train\nval: images/missing\nnames: [a]\n")
    with pytest.raises(DataError, match=r"data\.yaml: val: images/missing does not exist"):
        read_source(yolo_dir)
    yaml_file.write_text("train: images/train\n")
    with pytest.raises(DataError, match=r"data\.yaml: no class names; add names:"):
        read_source(yolo_dir)


# ---- VOC ---------------------------------------------------------------------------------------------


def voc_xml(filename: str, size: tuple[int, int], objects: list[tuple[str, tuple, int]]) -> str:
    """``size`` is (W, H); objects are (name, (xmin, ymin, xmax, ymax), difficult)."""
    body = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b, d in objects
    )
    return (
        f"<annotation><filename>{filename}</filename><size><width>{size[0]}</width><height>{size[1]}</height>"
        f"<depth>3</depth></size>{body}</annotation>"
    )


@pytest.fixture
def voc_dir(tmp_path: Path) -> Path:
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    for stem in ("a", "b", "c", "d"):
        png(root / "JPEGImages" / f"{stem}.png", (20, 30))
    xml = {
        "a": voc_xml(
            "a.png", (30, 20), [("dog", (1, 1, 10, 20), 0), ("cat", (5, 6, 7, 8), 1), ("cat", (11, 2, 30, 9), 0)]
        ),
        "b": voc_xml("b.png", (31, 20), [("cat", ("x", 1, 5, 5), 0), ("bird", (20, 10, 40, 20), 0)]),
        "c": "<annotation><filename>c.png</filename><object>",  # never closed
        "d": voc_xml("d.png", (30, 20), []),  # in no split list
    }
    for stem, text in xml.items():
        (root / "Annotations" / f"{stem}.xml").write_text(text)
    sets = root / "ImageSets" / "Main"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("a\nc\nghost\n")
    (sets / "val.txt").write_text("b\n")
    (sets / "cat_train.txt").write_text("a 1\n")  # per-class lists are not splits
    return root


def test_voc_reader_converts_corners_and_counts_problems(voc_dir: Path) -> None:
    assert detect_format(voc_dir) == "voc"
    source, skipped = read_source(voc_dir)
    assert source.class_names == ["bird", "cat", "dog"]  # a and b parse; c does not
    assert list(source.splits) == ["train", "val"]
    a = source.splits["train"][0]
    np.testing.assert_array_equal(a.boxes, [[0, 0, 10, 20], [10, 1, 30, 9]])  # 1-based inclusive -> 0-based edges
    assert a.labels.tolist() == [2, 1]
    b = source.splits["val"][0]
    np.testing.assert_array_equal(b.boxes, [[19, 9, 30, 20]])
    assert skipped.counts == {
        "bad xml": 1,
        "difficult box": 1,
        "bad box": 1,
        "clipped box": 1,
        "size mismatch": 1,
        "missing file": 1,
        "unlisted": 1,
    }
    assert details(skipped, "bad box") == ["b.xml object 1: <bndbox> needs numeric xmin, ymin, xmax, ymax"]
    assert [e["file"] for e in skipped.examples if e["reason"] == "bad xml"] == [str(voc_dir / "Annotations" / "c.xml")]
    assert "ghost" in details(skipped, "missing file")[0]


def test_voc_labels_file_orders_classes_and_rejects_others(voc_dir: Path) -> None:
    (voc_dir / "labels.txt").write_text("dog\ncat\nhorse\n")
    source, skipped = read_source(voc_dir)
    assert source.class_names == ["dog", "cat", "horse"]
    assert source.splits["train"][0].labels.tolist() == [0, 1]
    assert "b.xml object 2: unknown class 'bird' (the labels file lists 3)" in details(skipped, "bad box")


def test_detect_format_by_layout(tmp_path: Path, coco_dir: Path, yolo_dir: Path, voc_dir: Path) -> None:
    folder = tmp_path / "classify"
    png(folder / "cat" / "1.png")
    (folder / "notes.json").write_text("{}")  # a stray JSON does not make a COCO dataset
    assert [detect_format(p) for p in (coco_dir, yolo_dir, voc_dir, folder, tmp_path / "nope")] == [
        "coco",
        "yolo",
        "voc",
        None,
        None,
    ]
    with pytest.raises(DataError, match="is not laid out as a detection dataset"):
        read_source(folder)


# ---- open_detection and DetectionSplit ---------------------------------------------------------------


def test_open_detection_auto_split_is_seeded(tmp_path: Path) -> None:
    simple_coco(tmp_path / "ds", 20)

    def parts(seed: int) -> dict[str, list[str]]:
        bundle = open_detection(tmp_path / "ds", options=SplitOptions(seed=seed))
        return {s: sorted(Path(r.image).name for r in split.records) for s, split in bundle.splits.items()}

    first, again, other = parts(0), parts(0), parts(1)
    assert first == again and first != other
    assert [len(first[s]) for s in ("train", "val", "test")] == [14, 2, 4]  # 70/10/20 of two strata of 10
    assert sorted(name for names in first.values() for name in names) == [f"{i:02d}.png" for i in range(20)]
    bundle = open_detection(tmp_path / "ds")
    assert bundle.task == "detect" and bundle.native_size == (24, 32) and bundle.channels == 3
    assert bundle.split_policy.startswith("stratified 70/10/20 (seed 0); images stratified by the rarest class")
    described = bundle.describe()
    assert described["splits"]["train"]["class_counts"] == [7, 7]  # one box per image, classes alternate
    assert bundle.class_names == ["c0", "c1"]


def test_open_detection_pools_classes_too_rare_to_stratify(tmp_path: Path) -> None:
    simple_coco(tmp_path / "ds", 10, classes=10, grey=True)  # ten classes of one image each
    bundle = open_detection(tmp_path / "ds")
    assert [len(bundle.splits[s]) for s in ("train", "val", "test")] == [7, 1, 2]  # not all ten in train
    assert bundle.channels == 1 and bundle.splits["val"][0][0].shape == (1, 24, 32)


def test_open_detection_declared_splits_grey_and_mixed_sizes(coco_dir: Path) -> None:
    bundle = open_detection(coco_dir)
    assert [len(bundle.splits[s]) for s in ("train", "val", "test")] == [2, 1, 1]  # 3 train images: 2 + 1
    assert bundle.split_policy == (
        "dataset (train/val) + stratified test 20% of train (seed 0); "
        "images stratified by the rarest class they contain (COCO)"
    )
    assert bundle.native_size is None and bundle.channels == 3
    assert bundle.skipped.counts["truncated"] == 1


def test_open_detection_nothing_usable(tmp_path: Path) -> None:
    simple_coco(tmp_path / "ds", 2)
    data = json.loads((tmp_path / "ds" / "annotations.json").read_text())
    data["annotations"] = []
    (tmp_path / "ds" / "annotations.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"read as COCO, 2 usable images but not one usable box"):
        open_detection(tmp_path / "ds")
    for file in (tmp_path / "ds" / "images").iterdir():
        file.unlink()
    with pytest.raises(DataError, match=r"read as COCO, 0 usable images \(skipped: 2 missing file\)"):
        open_detection(tmp_path / "ds")


def test_split_item_flip_moves_boxes_and_pickles(tmp_path: Path) -> None:
    image = png(tmp_path / "x.png", (10, 20))
    record = BoxRecord(str(image), 20, 10, [[2, 3, 10, 8], [15, 0, 20, 10]], [1, 0])
    split = DetectionSplit([record], ["a", "b"])
    raw, target = split[0]
    assert isinstance(raw, tv_tensors.Image) and raw.shape == (3, 10, 20) and raw.dtype == torch.uint8
    assert isinstance(target["boxes"], tv_tensors.BoundingBoxes) and target["boxes"].canvas_size == (10, 20)
    assert target["labels"].dtype == torch.int64 and target["image_id"] == 0
    flipped, moved = split.with_transform(v2.RandomHorizontalFlip(p=1.0))[0]
    torch.testing.assert_close(flipped.as_subclass(torch.Tensor), raw.flip(-1).as_subclass(torch.Tensor))
    assert moved["boxes"].tolist() == [[10, 3, 18, 8], [0, 0, 5, 10]]
    assert moved["labels"].tolist() == [1, 0]
    assert split.class_counts() == [1, 1]
    copy = pickle.loads(pickle.dumps(split.subset([0])))
    assert copy[0][1]["boxes"].tolist() == target["boxes"].tolist() and copy.in_memory is False


def test_split_skips_an_image_that_went_bad(tmp_path: Path) -> None:
    records = [BoxRecord(str(png(tmp_path / f"{i}.png", (8, 8), i)), 8, 8, [[0, 0, 4, 4]], [i]) for i in range(3)]
    log = tmp_path / "skips.jsonl"
    split = DetectionSplit(records, ["a", "b", "c"], skip_log=log)
    os.unlink(records[1].image)
    png(Path(records[2].image), (9, 8))  # now a different size: its boxes would be wrong
    assert [split[i][1]["image_id"] for i in range(3)] == [0, 0, 0]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(Path(x["file"]).name, x["reason"]) for x in lines] == [
        ("1.png", "missing file"),
        ("2.png", "size changed"),
    ]
    assert split.subset([1, 2]).class_counts() == [0, 1, 1]
