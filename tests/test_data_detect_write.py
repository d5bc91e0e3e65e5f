"""Detection data, written and generated: format round trips through the writers, and the procedural
shapes set (seeded, boxes tight around the drawn pixels, readable in every format)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cnnlab.data.detection import (
    convert,
    detect_format,
    make_shapes,
    open_detection,
    read_source,
    shapes_records,
    write_dataset,
)
from cnnlab.data.detection.shapes import mask_box
from cnnlab.errors import DataError
from tests.test_data_detect import ann, coco_json, png

# ---- writers and round trips -------------------------------------------------------------------------


def test_round_trip_coco_yolo_voc_coco(tmp_path: Path) -> None:
    src = tmp_path / "src"
    png(src / "train" / "p.png", (24, 32))
    png(src / "train" / "q.png", (24, 32), seed=1)
    png(src / "val" / "r.png", (24, 32), seed=2)
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "unused"}]
    coco_json(
        src / "annotations" / "instances_train.json",
        [{"id": 1, "file_name": "p.png"}, {"id": 2, "file_name": "q.png"}],
        [
            ann(1, 1, 1, [3.25, 4.4, 7.5, 4.2]),  # no .5 edge: its rounding after YOLO is a coin toss
            ann(2, 1, 2, [0, 0, 32, 24]),
            ann(3, 2, 2, [10.6, 2.4, 5.2, 9.3]),
        ],
        cats,
    )
    coco_json(src / "annotations" / "instances_val.json", [{"id": 1, "file_name": "r.png"}], [], cats)
    original, _ = read_source(src)

    convert(src, tmp_path / "y", "yolo")
    convert(tmp_path / "y", tmp_path / "v", "voc")
    convert(tmp_path / "v", tmp_path / "c", "coco")
    steps = {name: read_source(tmp_path / name)[0] for name in ("y", "v", "c")}
    assert [detect_format(tmp_path / n) for n in steps] == ["yolo", "voc", "coco"]
    for name, source in steps.items():
        assert source.class_names == ["a", "b", "unused"], name
        assert {s: len(r) for s, r in source.splits.items()} == {"train": 2, "val": 1}, name
    for split in ("train", "val"):
        for before, yolo, voc, coco in zip(*(s.splits[split] for s in (original, *steps.values())), strict=True):
            assert Path(before.image).name == Path(coco.image).name
            np.testing.assert_allclose(yolo.boxes, before.boxes, atol=1e-3)
            np.testing.assert_array_equal(voc.boxes, np.floor(before.boxes + 0.5))  # VOC: whole pixels
            np.testing.assert_array_equal(coco.boxes, voc.boxes)
            assert before.labels.tolist() == yolo.labels.tolist() == voc.labels.tolist() == coco.labels.tolist()
    assert os.stat(tmp_path / "c" / "train" / "p.png").st_nlink > 1  # hard-linked, not copied
    np.testing.assert_allclose(original.splits["train"][1].boxes, [[10.6, 2.4, 15.8, 11.7]], rtol=1e-6)


def test_write_dataset_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    with pytest.raises(DataError, match="already exists and is not empty"):
        write_dataset({"train": []}, ["a"], tmp_path / "out", "coco")


# ---- the shapes generator ----------------------------------------------------------------------------


def test_mask_box_is_tight_and_exclusive() -> None:
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:8] = True
    mask[7, 4] = True
    np.testing.assert_array_equal(mask_box(mask), [3, 2, 8, 8])
    with pytest.raises(ValueError):
        mask_box(np.zeros((3, 3), dtype=bool))


def test_shapes_are_seeded_and_boxes_tight_around_drawn_pixels() -> None:
    images, targets = shapes_records(6, 64, seed=3)
    again, same = shapes_records(6, 64, seed=3)
    other, _ = shapes_records(6, 64, seed=4)
    np.testing.assert_array_equal(images, again)
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(targets, same, strict=True))
    assert not np.array_equal(images, other)
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.uint8

    plain, single = shapes_records(8, 64, seed=5, max_objects=1, plain=True)
    for image, (boxes, labels) in zip(plain, single, strict=True):
        drawn = (image != 128).any(axis=-1)
        assert len(boxes) == 1 and 0 <= labels[0] < 4
        np.testing.assert_array_equal(boxes[0], mask_box(drawn))
    crowded, many = shapes_records(8, 96, seed=6, max_objects=6, plain=True)
    for image, (boxes, _) in zip(crowded, many, strict=True):
        drawn = (image != 128).any(axis=-1)
        covered = np.zeros_like(drawn)
        for x1, y1, x2, y2 in boxes.astype(int):
            covered[y1:y2, x1:x2] = True
            # tight: every edge row and column of the box holds drawn pixels
            assert drawn[y1, x1:x2].any() and drawn[y2 - 1, x1:x2].any()
            assert drawn[y1:y2, x1].any() and drawn[y1:y2, x2 - 1].any()
        assert not (drawn & ~covered).any()  # no drawn pixel outside every box
    assert sum(len(b) for b, _ in many) > 16  # several objects per image


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_make_shapes_is_readable_in_every_format(tmp_path: Path, fmt: str) -> None:
    out = make_shapes(tmp_path / fmt, n_train=4, n_val=2, n_test=1, size=48, fmt=fmt, seed=2)
    bundle = open_detection(out)
    assert bundle.class_names == ["circle", "square", "triangle", "star"]
    assert [len(bundle.splits[s]) for s in ("train", "val", "test")] == [4, 2, 1]
    assert bundle.skipped.total == 0 and bundle.native_size == (48, 48)
    images, targets = shapes_records(2, 48, seed=2, part=1)  # the val stream
    for k in range(2):
        image, target = bundle.splits["val"][k]
        np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), images[k])
        np.testing.assert_allclose(target["boxes"].numpy(), targets[k][0], atol=1e-3)
        assert target["labels"].tolist() == targets[k][1].tolist()
    with pytest.raises(DataError, match="not empty"):
        make_shapes(out, n_train=1, n_val=0, n_test=0, size=48, fmt=fmt)
