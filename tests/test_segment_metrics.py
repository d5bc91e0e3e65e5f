"""Segmentation losses, metrics (IoU, Dice, HD95) and sliding-window inference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from cnnlab.errors import ConfigError, DataError
from cnnlab.tasks.segment_losses import (
    IGNORE_INDEX,
    LOSS_NAMES,
    build_segment_loss,
    class_weights_from_pixels,
)
from cnnlab.tasks.segment_metrics import (
    SegmentationMetrics,
    confusion_matrix,
    hd95,
    iou_dice_from_confusion,
)
from cnnlab.tasks.sliding_window import _starts, importance_map, sliding_window_inference

I = IGNORE_INDEX  # noqa: E741

# ---------------------------------------------------------------------------------------------- metrics

TARGET = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, I, I], [2, 2, 0, 0]])
PRED = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1], [2, 0, 1, 2], [2, 2, 0, 0]])
# By hand, class 3 in neither: class 0 TP 5 FP 1 FN 1; class 1 TP 4 FP 1 FN 0; class 2 TP 3 FP 0 FN 1.
HAND_CONFUSION = [[5, 1, 0, 0], [0, 4, 0, 0], [1, 0, 3, 0], [0, 0, 0, 0]]


def test_confusion_iou_dice_by_hand() -> None:
    cm = confusion_matrix(PRED, TARGET, 4, IGNORE_INDEX)
    assert cm.dtype == torch.int64 and cm.tolist() == HAND_CONFUSION
    iou, dice = iou_dice_from_confusion(cm)
    assert iou[:3].tolist() == pytest.approx([5 / 7, 4 / 5, 3 / 4])
    assert dice[:3].tolist() == pytest.approx([10 / 12, 8 / 9, 6 / 7])
    assert math.isnan(iou[3]) and math.isnan(dice[3])


@pytest.mark.parametrize("as_logits", [True, False])
def test_metrics_by_hand(as_logits: bool) -> None:
    names = ["bg", "liver", "tumour", "vessel"]
    metrics = SegmentationMetrics(4, names)
    outputs = F.one_hot(PRED, 4).permute(2, 0, 1)[None].float() * 5 if as_logits else PRED[None]
    metrics.update(outputs, {"masks": TARGET[None]})
    metrics.reduce()  # no-op outside torch.distributed
    result = metrics.compute()
    assert result["pixels"] == 14 and result["images"] == 1
    assert result["iou_per_class"] == pytest.approx({"bg": 5 / 7, "liver": 4 / 5, "tumour": 3 / 4, "vessel": None})
    assert result["dice_per_class"]["vessel"] is None
    assert result["miou"] == pytest.approx((5 / 7 + 4 / 5 + 3 / 4) / 3)  # the absent class is left out
    assert result["mdice"] == pytest.approx((10 / 12 + 8 / 9 + 6 / 7) / 3)
    assert result["miou_foreground"] == pytest.approx((4 / 5 + 3 / 4) / 2)
    assert result["mdice_foreground"] == pytest.approx((8 / 9 + 6 / 7) / 2)
    assert result["pixel_accuracy"] == pytest.approx(12 / 14)
    assert result["confusion"] == HAND_CONFUSION
    assert "hd95_mm" not in result


def test_ignore_pixels_count_for_nothing() -> None:
    metrics, changed = SegmentationMetrics(4), SegmentationMetrics(4)
    other = PRED.clone()
    other[TARGET == I] = 3  # whatever is predicted under ignore pixels
    metrics.update(PRED[None], TARGET[None])
    changed.update(other[None], TARGET[None])
    assert metrics.compute() == changed.compute()


def test_metrics_against_torchmetrics() -> None:
    from torchmetrics.classification import MulticlassJaccardIndex
    from torchmetrics.segmentation import DiceScore

    generator = torch.Generator().manual_seed(0)
    k = 5
    ours, jaccard = SegmentationMetrics(k), MulticlassJaccardIndex(k, average="none", ignore_index=I)
    ours_no_ignore = SegmentationMetrics(k)
    # DiceScore has no ignore_index; "global" sums TP/FP/FN over the whole set, as ours does.
    dice = DiceScore(k, average="none", aggregation_level="global", input_format="index")
    for _ in range(3):
        target = torch.randint(0, k - 1, (2, 9, 11), generator=generator)  # class 4 never in the target
        pred = torch.randint(0, k - 1, (2, 9, 11), generator=generator)
        pred[pred == 3] = 2  # class 3 is never predicted: present in the target only
        ours_no_ignore.update(pred, target)
        dice.update(pred, target)
        target[torch.rand(target.shape, generator=generator) < 0.2] = I
        ours.update(pred, target)
        jaccard.update(pred, target)
    # torchmetrics reports 0 where a class is absent from both (zero_division); ours reports None.
    iou_ref, dice_ref = jaccard.compute().tolist(), dice.compute().tolist()
    iou = list(ours.compute()["iou_per_class"].values())
    dice_ours = list(ours_no_ignore.compute()["dice_per_class"].values())
    assert iou[4] is None and dice_ours[4] is None
    assert iou[:4] == pytest.approx(iou_ref[:4], abs=1e-6)
    assert dice_ours[:4] == pytest.approx(dice_ref[:4], abs=1e-6)
    assert iou[3] == 0.0  # in the target only: defined, and 0


def test_metric_errors() -> None:
    with pytest.raises(DataError, match="mask value 7"):
        confusion_matrix(torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 7, I]), 3)
    with pytest.raises(ConfigError, match="class_names"):
        SegmentationMetrics(3, ["a", "b"])
    with pytest.raises(ValueError, match="do not fit"):
        SegmentationMetrics(3).update(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    assert SegmentationMetrics(3).compute()["pixels"] == 0


# ------------------------------------------------------------------------------------------------ hd95


def _brute_hd(a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...], percentile: float) -> float:
    """All-pairs distances between boundary voxels, the boundary found by looking at the 2*dims face
    neighbours of every voxel (outside the array counts as outside the mask)."""

    def boundary(mask: np.ndarray) -> np.ndarray:
        padded = np.pad(mask, 1)
        inner = tuple(slice(1, -1) for _ in mask.shape)
        edge = np.zeros_like(mask)
        for axis in range(mask.ndim):
            for step in (-1, 1):
                edge |= mask & ~np.roll(padded, step, axis=axis)[inner]
        return edge

    pa, pb = np.argwhere(boundary(a)) * spacing, np.argwhere(boundary(b)) * spacing
    distances = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    return max(np.percentile(distances.min(1), percentile), np.percentile(distances.min(0), percentile))


def _cube(shape: tuple[int, ...], start: tuple[int, ...], side: int) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[tuple(slice(s, s + side) for s in start)] = True
    return mask


def test_hd95_by_hand() -> None:
    a = _cube((12, 12, 12), (2, 3, 3), 5)
    b = _cube((12, 12, 12), (4, 3, 3), 5)  # shifted by 2 voxels along z (axis 0)
    # A quarter of A's surface (its bottom face) lies exactly 2 voxels from B's, the rest closer: P95 = 2.
    assert hd95(a, b) == pytest.approx(2.0)
    assert hd95(a, b, (2.5, 1.0, 1.0)) == pytest.approx(5.0)  # z spacing scales the z distance
    assert hd95(a, b, (1.0, 2.5, 1.0)) == pytest.approx(2.0)  # other axes do not matter
    assert hd95(torch.from_numpy(a), torch.from_numpy(a), (3.0, 1.0, 1.0)) == 0.0
    square_a, square_b = _cube((10, 14), (2, 2), 5), _cube((10, 14), (2, 5), 5)
    assert hd95(square_a, square_b, percentile=100) == pytest.approx(3.0)
    empty = np.zeros_like(a)
    assert hd95(empty, empty) == 0.0
    assert math.isnan(hd95(a, empty)) and math.isnan(hd95(empty, a))
    with pytest.raises(ConfigError, match="spacing"):
        hd95(a, b, (1.0, 1.0))


def _blob(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return ndimage.binary_opening(ndimage.gaussian_filter(rng.random(shape), 1.0) > 0.5)


@pytest.mark.parametrize("seed", range(6))
def test_hd95_against_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (9, 11, 10)
    a, b = _blob(rng, shape), _blob(rng, shape)
    if not (a.any() and b.any()):
        a[2:5, 3:6, 1:4] = b[0:2, 8:11, 7:10] = True  # touching the borders exercises the crop
    spacing = tuple(rng.uniform(0.5, 3.0, 3))
    for percentile in (95.0, 100.0):
        expected = _brute_hd(a, b, spacing, percentile)
        assert hd95(a, b, spacing, percentile=percentile) == pytest.approx(expected, abs=1e-9)


def test_hd95_in_metrics() -> None:
    shape = (10, 12, 12)
    target, pred = np.zeros((2, *shape), np.int64), np.zeros((2, *shape), np.int64)
    target[0][_cube(shape, (4, 3, 3), 5)], pred[0][_cube(shape, (2, 3, 3), 5)] = 1, 1  # 2 voxels apart in z
    target[0, 0, 0, :2] = 2  # class 2 in the target, not predicted: skipped
    target[1][_cube(shape, (0, 0, 0), 4)] = pred[1][_cube(shape, (0, 0, 0), 4)] = 1  # identical: 0
    spacing = torch.tensor([[3.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    metrics = SegmentationMetrics(4, hausdorff=True)
    metrics.update(torch.from_numpy(pred), {"masks": torch.from_numpy(target), "spacing": spacing})
    result = metrics.compute()
    assert result["hd95_per_class"] == pytest.approx({"1": (6.0 + 0.0) / 2, "2": None, "3": None})
    assert result["hd95_mm"] == pytest.approx(3.0)
    assert result["hd95_skipped"] == 1
    # A bare mask tensor means spacing 1.
    bare = SegmentationMetrics(4, hausdorff=True)
    bare.update(torch.from_numpy(pred), torch.from_numpy(target))
    assert bare.compute()["hd95_per_class"]["1"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------- losses


def _batch(shape: tuple[int, ...], k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, k, shape, generator=generator)
    target[torch.rand(shape, generator=generator) < 0.25] = I
    return torch.randn(shape[0], k, *shape[1:], generator=generator), target


def test_perfect_logits() -> None:
    _, target = _batch((2, 8, 8), 3)
    logits = F.one_hot(target.clamp(max=2), 3).movedim(-1, 1).float() * 40
    for name in LOSS_NAMES:
        total, parts = build_segment_loss(name, num_classes=3)(logits, target)
        assert total.item() == pytest.approx(0.0, abs=1e-5), name
        assert set(parts) == set(name.split("+"))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_ignore_pixels_change_neither_loss_nor_gradient(name: str) -> None:
    logits, target = _batch((2, 6, 7), 4)
    loss = build_segment_loss(name, num_classes=4, class_weights=[1.0, 2.0, 0.5, 3.0])
    other = logits.clone()
    other[(target == I).unsqueeze(1).expand_as(other)] = 100.0  # confident garbage under ignore pixels
    logits.requires_grad_(True)
    total, _ = loss(logits, target)
    total.backward()
    assert loss(other, target)[0].item() == pytest.approx(total.item(), rel=1e-6)
    grad = logits.grad.movedim(1, -1)
    assert torch.isfinite(grad).all()
    assert grad[target == I].abs().max() == 0
    assert grad[target != I].abs().max() > 0


def test_cross_entropy_focal_and_weights() -> None:
    logits, target = _batch((2, 9, 9), 3, seed=1)
    weights = [0.2, 1.0, 5.0]
    weighted = build_segment_loss("ce", num_classes=3, class_weights=weights)(logits, target)[0]
    plain = build_segment_loss("ce", num_classes=3)(logits, target)[0]
    assert weighted.item() != pytest.approx(plain.item(), rel=1e-3)
    expected = F.cross_entropy(logits, target, weight=torch.tensor(weights), ignore_index=I)
    assert weighted.item() == pytest.approx(expected.item(), rel=1e-6)
    focal0 = build_segment_loss("focal", num_classes=3, class_weights=weights, focal_gamma=0.0)(logits, target)[0]
    assert focal0.item() == pytest.approx(weighted.item(), rel=1e-6)
    focal = build_segment_loss("focal", num_classes=3, class_weights=weights)(logits, target)[0]
    assert 0 < focal.item() < weighted.item()


def test_dice_averages_active_classes_only() -> None:
    logits, target = _batch((2, 8, 8), 2, seed=2)
    three = torch.cat([logits, torch.full_like(logits[:, :1], -60.0)], dim=1)  # class 2: absent, never predicted
    dice2 = build_segment_loss("dice", num_classes=2)(logits, target)[0]
    dice3 = build_segment_loss("dice", num_classes=3)(three, target)[0]
    assert dice3.item() == pytest.approx(dice2.item(), rel=1e-5)


def test_losses_3d_extreme_and_all_ignored() -> None:
    logits, target = _batch((2, 4, 5, 6), 3, seed=3)
    logits = (logits * 1e4).requires_grad_(True)  # saturated softmax must stay finite
    for name in LOSS_NAMES:
        total, _ = build_segment_loss(name, num_classes=3)(logits, target)
        (grad,) = torch.autograd.grad(total, logits)
        assert torch.isfinite(total) and torch.isfinite(grad).all(), name
    ignored = torch.full_like(target, I)
    for name in LOSS_NAMES:
        total, _ = build_segment_loss(name, num_classes=3)(logits, ignored)
        (grad,) = torch.autograd.grad(total, logits)
        assert total.item() == 0.0 and grad.abs().max() == 0, name


def test_loss_errors_and_class_weights_from_pixels() -> None:
    with pytest.raises(ConfigError, match=r"ce\+dice"):
        build_segment_loss("dice+ce", num_classes=3)
    with pytest.raises(ConfigError, match="2 values for 3 classes"):
        build_segment_loss("ce", num_classes=3, class_weights=[1.0, 2.0])
    with pytest.raises(ConfigError, match="out_channels"):
        build_segment_loss("ce", num_classes=3)(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    assert class_weights_from_pixels([100, 50, 25]) == pytest.approx([0.5, 1.0, 2.0])
    assert class_weights_from_pixels(torch.tensor([10**6, 10**4, 10, 0])) == pytest.approx([0.1, 1.0, 10.0, 1.0])
    with pytest.raises(ConfigError, match="all zero"):
        class_weights_from_pixels([0, 0])


# -------------------------------------------------------------------------------------- sliding window


def _pointwise(dims: int, channels: int = 2, classes: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    return (torch.nn.Conv2d if dims == 2 else torch.nn.Conv3d)(channels, classes, 1).eval()


def test_window_covering_the_image_is_exact() -> None:
    torch.manual_seed(0)
    model = torch.nn.Conv2d(2, 3, 5, padding=2).eval()  # not pointwise: tiles would change it
    inputs = torch.randn(3, 2, 16, 20)
    with torch.no_grad():
        expected = model(inputs)
    assert torch.equal(sliding_window_inference(model, inputs, (16, 20), batch_size=2), expected)


@pytest.mark.parametrize(
    ("shape", "window", "blend"),
    [
        ((2, 2, 37, 29), (12, 10), "gaussian"),
        ((1, 2, 13, 17, 11), (6, 8, 5), "gaussian"),
        ((2, 2, 30, 31), (8, 9), "constant"),
    ],
)
def test_pointwise_model_matches_whole_image(shape: tuple[int, ...], window: tuple[int, ...], blend: str) -> None:
    model = _pointwise(len(window))
    inputs = torch.randn(shape)
    with torch.no_grad():
        expected = model(inputs)
    result = sliding_window_inference(model, inputs, window, overlap=0.5, blend=blend, batch_size=3)
    assert result.shape == expected.shape
    torch.testing.assert_close(result, expected, atol=1e-5, rtol=1e-5)


def test_tile_starts_cover_the_end() -> None:
    assert _starts(10, 4, 0.5) == [0, 2, 4, 6]
    assert _starts(11, 4, 0.5) == [0, 2, 4, 6, 7]
    assert _starts(9, 3, 0.0) == [0, 3, 6]
    assert _starts(3, 5, 0.5) == [0]
    weight = importance_map((9, 16))
    assert weight.max() == 1.0 and weight.min() > 0


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_inputs_smaller_than_window_are_padded(pad_mode: str) -> None:
    model, seen = _pointwise(3), []

    def predict(tiles: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(tiles.shape[2:]))
        return model(tiles)

    inputs = torch.randn(2, 2, 3, 20, 7)  # axes 0 and 2 shorter than the window, axis 1 longer
    with torch.no_grad():
        expected = model(inputs)
    result = sliding_window_inference(predict, inputs, (8, 8, 8), pad_mode=pad_mode)
    assert set(seen) == {(8, 8, 8)}
    torch.testing.assert_close(result, expected, atol=1e-5, rtol=1e-5)


def test_size_divisor_and_numpy_predict() -> None:
    model, seen = _pointwise(2), []

    def onnx_like(tiles: torch.Tensor) -> np.ndarray:  # an ONNX Runtime wrapper: numpy out
        seen.append(tuple(tiles.shape[2:]))
        with torch.no_grad():
            return model(tiles).numpy()

    inputs = torch.randn(1, 2, 45, 70)
    result = sliding_window_inference(onnx_like, inputs, (20, 30), size_divisor=16)
    assert set(seen) == {(32, 32)}
    assert isinstance(result, torch.Tensor) and result.shape == (1, 3, 45, 70)
    with torch.no_grad():
        torch.testing.assert_close(result, model(inputs), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": (8,)},
        {"window": (8, 0)},
        {"window": (8, 8, 8)},
        {"window": (8, 8), "overlap": 1.0},
        {"window": (8, 8), "overlap": -0.1},
        {"window": (8, 8), "blend": "cosine"},
        {"window": (8, 8), "pad_mode": "wrap"},
        {"window": (8, 8), "batch_size": 0},
        {"window": (8, 8), "size_divisor": 0},
    ],
)
def test_sliding_window_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        sliding_window_inference(_pointwise(2), torch.randn(1, 2, 16, 16), **kwargs)


def test_predict_returning_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="resize strided outputs"):
        sliding_window_inference(lambda x: x[..., ::2, ::2], torch.randn(1, 2, 16, 16), (8, 8))
