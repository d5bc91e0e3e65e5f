"""COCO detection metrics: hand-computed cases, exact agreement with pycocotools, and the accumulator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.errors import DataError
from cnnlab.evaluate.coco_map import evaluate_boxes
from cnnlab.tasks.detect_metrics import DetectionMetrics

SUMMARY = (
    "map",
    "map50",
    "map75",
    "map_small",
    "map_medium",
    "map_large",
    "mar_1",
    "mar_10",
    "mar_100",
    "mar_small",
    "mar_medium",
    "mar_large",
)


def image(boxes, labels, scores=None, crowd=None) -> dict[str, np.ndarray]:
    out = {"boxes": np.asarray(boxes, np.float64).reshape(-1, 4), "labels": np.asarray(labels, np.int64)}
    if scores is not None:
        out["scores"] = np.asarray(scores, np.float64)
    if crowd is not None:
        out["iscrowd"] = np.asarray(crowd, np.int64)
    return out


def reference(predictions, targets, num_classes):
    pytest.importorskip("pycocotools")
    from cnnlab.evaluate.coco_reference import pycocotools_map

    return pycocotools_map(predictions, targets, num_classes)


def assert_same(ours: dict, theirs: dict, num_classes: int) -> None:
    for key in SUMMARY:
        assert ours[key] == pytest.approx(theirs[key], abs=1e-6), key
    for key in ("ap_per_class", "ap50_per_class"):
        for k in range(num_classes):
            if theirs[key][k] is None:
                assert ours[key][k] is None, (key, k)
            else:
                assert ours[key][k] == pytest.approx(theirs[key][k], abs=1e-6), (key, k)


# --- hand-computed ---------------------------------------------------------------------------------

GT = [[10, 10, 60, 60], [100, 100, 300, 250]]  # areas 2500 (medium) and 30000 (large)


def test_perfect_prediction_scores_one() -> None:
    targets = [image(GT, [0, 1])]
    predictions = [image(GT, [0, 1], [0.9, 0.8])]
    result = evaluate_boxes(predictions, targets, num_classes=2)
    for key in ("map", "map50", "map75", "map_medium", "map_large", "mar_1", "mar_10", "mar_100"):
        assert result[key] == pytest.approx(1.0, abs=1e-12), key  # COCO's tp / (tp + fp + eps) is 1 - 1e-16
    assert result["map_small"] == -1.0 and result["mar_small"] == -1.0  # no small objects: COCO's -1
    assert result["ap_per_class"] == {0: pytest.approx(1.0, abs=1e-12), 1: pytest.approx(1.0, abs=1e-12)}


def test_false_positive_ranked_first() -> None:
    # Two gts; a false positive (score .9) precedes the only true positive (score .8):
    # points (recall, precision) = (0, 0), (.5, .5); interpolated precision is .5 for the 51 recall
    # thresholds 0..0.50 and 0 beyond, so AP = 51 * .5 / 101 at every IoU threshold.
    targets = [image(GT, [0, 0])]
    predictions = [image([[400, 400, 450, 450], GT[0]], [0, 0], [0.9, 0.8])]
    result = evaluate_boxes(predictions, targets, num_classes=1)
    expected = 51 * 0.5 / 101
    assert result["map"] == pytest.approx(expected, abs=1e-12)
    assert result["map50"] == pytest.approx(expected, abs=1e-12)
    assert result["mar_100"] == 0.5
    assert result["mar_1"] == 0.0  # one detection per image and class: only the false positive
    # Medium: the 50x50 false positive still counts, so the same .5 precision reaches recall 1.
    assert result["map_medium"] == pytest.approx(0.5, abs=1e-12)
    # Large: both detections are ignored (one is out of range, the other matched a gt that is), AP 0.
    assert result["map_large"] == 0.0


def test_iou_060_counts_for_three_thresholds() -> None:
    targets = [image([[0, 0, 100, 100]], [0])]
    predictions = [image([[0, 0, 100, 62]], [0], [0.5])]  # IoU .62: thresholds .50, .55, .60 only
    result = evaluate_boxes(predictions, targets, num_classes=1)
    assert result["map50"] == pytest.approx(1.0, abs=1e-12)
    assert result["map75"] == 0.0
    assert result["map"] == pytest.approx(0.3 * result["map50"], abs=1e-12)
    assert result["mar_100"] == pytest.approx(0.3, abs=1e-12)


def test_iou_exactly_on_a_threshold_matches() -> None:
    # IoU 7500/10000 is exactly .75 in floating point: COCO matches at IoU >= threshold, so .50-.75 count.
    targets = [image([[0, 0, 100, 100]], [0])]
    predictions = [image([[0, 0, 100, 75]], [0], [0.5])]
    result = evaluate_boxes(predictions, targets, num_classes=1)
    assert result["map75"] == pytest.approx(1.0, abs=1e-12)
    assert result["mar_100"] == pytest.approx(0.6, abs=1e-12)


def test_max_dets_caps_each_image_and_class() -> None:
    # 100 higher-scoring false positives push the only true positive past the cap of 100.
    gt = [[0, 0, 50, 50]]
    far = [[200 + i, 200, 260 + i, 260] for i in range(100)]
    targets = [image(gt, [0])]
    predictions = [image([*far, gt[0]], [0] * 101, [0.9] * 100 + [0.1])]
    assert evaluate_boxes(predictions, targets, num_classes=1)["mar_100"] == 0.0
    assert evaluate_boxes(predictions, targets, num_classes=1, max_dets=101)["mar_101"] == 1.0
    assert_same(evaluate_boxes(predictions, targets, num_classes=1), reference(predictions, targets, 1), 1)
    # The cap counts per class: 100 false positives of another class leave the true positive in.
    predictions = [image([*far, gt[0]], [1] * 100 + [0], [0.9] * 100 + [0.1])]
    result = evaluate_boxes(predictions, targets, num_classes=2)
    assert result["mar_100"] == 1.0
    assert_same(result, reference(predictions, targets, 2), 2)


def test_class_without_ground_truth_is_none() -> None:
    targets = [image(GT, [0, 0])]
    predictions = [image([GT[0], [5, 5, 40, 40]], [0, 2], [0.9, 0.95])]
    result = evaluate_boxes(predictions, targets, num_classes=3)
    assert result["ap_per_class"][1] is None and result["ap_per_class"][2] is None
    assert result["ap50_per_class"][2] is None
    # The class-2 detection costs class 0 nothing: AP is per class, and the mean skips absent classes.
    assert result["ap_per_class"][0] == pytest.approx(51 / 101, abs=1e-12)
    assert result["map"] == result["ap_per_class"][0]


def test_empty_predictions_score_zero() -> None:
    targets = [image(GT, [0, 1]), image(np.zeros((0, 4)), [])]
    predictions = [image(np.zeros((0, 4)), [], []), image(np.zeros((0, 4)), [], [])]
    result = evaluate_boxes(predictions, targets, num_classes=2)
    for key in ("map", "map50", "map75", "map_medium", "mar_1", "mar_100"):
        assert result[key] == 0.0, key
    assert result["ap_per_class"] == {0: 0.0, 1: 0.0}
    assert_same(result, reference(predictions, targets, 2), 2)


def test_crowd_region_absorbs_detections() -> None:
    # A crowd region covering one object: a detection on the object is a true positive (a regular gt
    # wins over a better-overlapping crowd gt), extra detections inside the region are ignored.
    targets = [image([[0, 0, 200, 200], [20, 20, 80, 80]], [0, 0], crowd=[1, 0])]
    boxes = [[20, 20, 80, 80], [100, 100, 150, 150], [120, 30, 170, 90]]
    predictions = [image(boxes, [0, 0, 0], [0.9, 0.95, 0.97])]
    result = evaluate_boxes(predictions, targets, num_classes=1)
    assert result["map"] == pytest.approx(1.0, abs=1e-12)
    without_crowd = [image([[0, 0, 200, 200], [20, 20, 80, 80]], [0, 0])]
    assert evaluate_boxes(predictions, without_crowd, num_classes=1)["map"] < 0.5
    assert_same(result, reference(predictions, targets, 1), 1)


def test_equal_iou_goes_to_the_later_ground_truth() -> None:
    # The first detection overlaps gts A and B equally (IoU 90/110 = .82); COCO's scan keeps the later
    # gt, B, which leaves A for the exact second detection. Up to .80 both are true positives (AP 1);
    # from .85 the first is a false positive ahead of one true positive (AP 51 * .5 / 101). Taking A
    # first would leave B at IoU 80/120 for the second detection and cost AP at .70-.80.
    targets = [image([[0, 0, 10, 10], [2, 0, 12, 10]], [0, 0])]
    predictions = [image([[1, 0, 11, 10], [0, 0, 10, 10]], [0, 0], [0.9, 0.8])]
    result = evaluate_boxes(predictions, targets, num_classes=1)
    assert result["map"] == pytest.approx((7 + 3 * 51 * 0.5 / 101) / 10, abs=1e-12)
    assert result["mar_100"] == pytest.approx(0.85, abs=1e-12)
    assert_same(result, reference(predictions, targets, 1), 1)


def test_area_bounds_are_inclusive() -> None:
    # A 32x32 box (area 1024) is both small and medium in COCO.
    targets = [image([[0, 0, 32, 32]], [0])]
    predictions = [image([[0, 0, 32, 32]], [0], [0.5])]
    result = evaluate_boxes(predictions, targets, num_classes=1)
    assert result["map_small"] == pytest.approx(1.0, abs=1e-12)
    assert result["map_medium"] == pytest.approx(1.0, abs=1e-12)
    assert result["map_large"] == -1.0


def test_label_out_of_range_is_a_data_error() -> None:
    with pytest.raises(DataError, match="num_classes"):
        evaluate_boxes([image(GT, [0, 5], [0.5, 0.5])], [image(GT, [0, 1])], num_classes=2)


# --- agreement with pycocotools ------------------------------------------------------------------


def random_case(seed: int, num_images: int = 24, num_classes: int = 4) -> tuple[list, list]:
    """Varied sizes, crowd regions over objects, empty images, score ties and an image past 100 dets."""
    rng = np.random.default_rng(seed)
    integer = seed % 2 == 1  # integer corners hit exact areas (32², 96²) and exact-threshold IoUs
    predictions, targets = [], []
    for i in range(num_images):
        n = 0 if rng.random() < 0.15 else int(rng.integers(1, 9))
        side = np.exp(rng.uniform(np.log(4), np.log(300), (n, 2)))
        side[rng.random(n) < 0.2] = rng.choice([32.0, 96.0])  # boxes on the area-range boundaries
        corner = rng.uniform(0, 400, (n, 2))
        boxes = np.concatenate([corner, corner + side], axis=1)
        labels = rng.integers(0, num_classes, n)
        crowd = np.zeros(n, np.int64)
        if n and rng.random() < 0.3:  # a crowd region over the first object, as in COCO's crowd annotations
            box = boxes[0] + np.array([-40.0, -40.0, 40.0, 40.0])
            boxes, labels, crowd = np.vstack([boxes, box]), np.append(labels, labels[0]), np.append(crowd, 1)
        if integer:
            boxes = np.round(boxes)
        targets.append(image(boxes, labels, crowd=crowd))

        found, found_labels = [], []
        for box, label in zip(boxes, labels, strict=True):
            for _ in range(int(rng.integers(0, 3))):
                size = np.tile(box[2:] - box[:2], 2)
                noise = 0.0 if rng.random() < 0.2 else rng.choice([0.02, 0.08, 0.25])
                found.append(box + rng.normal(0, 1, 4) * noise * size)
                found_labels.append(label if rng.random() > 0.1 else rng.integers(0, num_classes))
        false_positives = 150 if i == 3 else int(rng.integers(0, 5))  # image 3 exceeds max_dets for class 1
        for _ in range(false_positives):
            corner = rng.uniform(0, 400, 2)
            found.append(np.concatenate([corner, corner + np.exp(rng.uniform(np.log(4), np.log(300), 2))]))
            found_labels.append(1 if i == 3 else rng.integers(0, num_classes))
        found = np.asarray(found).reshape(-1, 4)
        if integer:
            found = np.round(found)
        scores = np.round(rng.random(len(found)), 1)  # one decimal: many ties, inside and across images
        predictions.append(image(found, found_labels, scores))
    return predictions, targets


@pytest.mark.parametrize("seed", range(6))
def test_equals_pycocotools(seed: int) -> None:
    predictions, targets = random_case(seed)
    ours = evaluate_boxes(predictions, targets, num_classes=4)
    assert_same(ours, reference(predictions, targets, 4), 4)
    assert 0.0 < ours["map"] < 1.0  # a case that scores 0 or 1 would prove little


def test_equals_pycocotools_on_float32_tensors() -> None:
    predictions, targets = random_case(10)
    as_tensors = lambda items: [{k: torch.as_tensor(v) for k, v in item.items()} for item in items]  # noqa: E731
    predictions = [{**p, "boxes": torch.as_tensor(p["boxes"], dtype=torch.float32)} for p in as_tensors(predictions)]
    ours = evaluate_boxes(predictions, as_tensors(targets), num_classes=4)
    assert_same(ours, reference(predictions, targets, 4), 4)


# --- the accumulator -----------------------------------------------------------------------------


def test_accumulator_matches_one_call_and_names_classes() -> None:
    predictions, targets = random_case(3, num_images=10, num_classes=3)
    names = ["cat", "dog", "bird"]
    metrics = DetectionMetrics(3, names)
    as_tensors = lambda items: [{k: torch.as_tensor(v) for k, v in item.items()} for item in items]  # noqa: E731
    metrics.update(as_tensors(predictions[:4]), as_tensors(targets[:4]))
    metrics.update(as_tensors(predictions[4:]), as_tensors(targets[4:]))
    metrics.reduce()  # not distributed: nothing to do
    result = metrics.compute()
    direct = evaluate_boxes(predictions, targets, num_classes=3)
    assert result["images"] == 10
    for key in SUMMARY:
        assert result[key] == direct[key], key
    assert set(result["ap_per_class"]) == set(names)
    assert result["ap_per_class"]["dog"] == direct["ap_per_class"][1]
    assert result["ap50_per_class"]["bird"] == direct["ap50_per_class"][2]


def test_accumulator_without_images() -> None:
    assert DetectionMetrics(2, ["a", "b"]).compute() == {"images": 0}
