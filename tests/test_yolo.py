"""cnnlab's YOLO-style detector: the assigner and losses on hand-computed cases, shapes in both
modes, an overfit check, ONNX parity, the registry-backbone adapter and input-size errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou, complete_box_iou_loss

from cnnlab.errors import ConfigError, DataError
from cnnlab.models.yolo import (
    TaskAlignedAssigner,
    bbox2dist,
    build_yolo,
    complete_iou,
    dist2bbox,
    distribution_focal_loss,
    make_anchors,
    nms,
)

NUM_CLASSES = 3
SIZE = 160
NUM_ANCHORS = (SIZE // 8) ** 2 + (SIZE // 16) ** 2 + (SIZE // 32) ** 2


def assign(points, pred_boxes, gt_boxes, gt_labels, gt_mask=None, scores=None, num_classes=2, **options):
    """Run the assigner on one image given as plain lists."""
    points = torch.tensor(points, dtype=torch.float32)
    pred_boxes = torch.tensor([pred_boxes], dtype=torch.float32)
    if scores is None:
        scores = torch.full((1, len(points), num_classes), 0.5)
    gt_boxes = torch.tensor([gt_boxes], dtype=torch.float32)
    gt_labels = torch.tensor([gt_labels])
    gt_mask = torch.ones_like(gt_labels, dtype=torch.bool) if gt_mask is None else torch.tensor([gt_mask])
    labels, boxes, target_scores, fg = TaskAlignedAssigner(**options)(
        scores, pred_boxes, points, gt_labels, gt_boxes, gt_mask
    )
    return labels[0], boxes[0], target_scores[0], fg[0]


def test_assigner_single_gt_inside_and_outside():
    gt = [0.0, 0.0, 20.0, 10.0]
    # centres inside, inside, just right of the box, far away; anchor 2's prediction overlaps the gt
    # perfectly, yet its centre is outside, so it must stay background.
    points = [[5, 5], [15, 5], [25, 5], [50, 50]]
    preds = [gt, [10, 0, 20, 10], gt, [40, 40, 60, 60]]
    labels, boxes, scores, fg = assign(points, preds, [gt], [1])
    assert fg.tolist() == [True, True, False, False]
    assert labels.tolist() == [1, 1, 2, 2]  # background is num_classes
    assert torch.equal(boxes[:2], torch.tensor([gt, gt]))
    assert torch.equal(boxes[2:], torch.zeros(2, 4))
    # t = s * u**6: 0.5 * 1 and 0.5 * 0.5**6; normalised by max t = 0.5 and scaled by max IoU = 1
    assert scores[:, 0].tolist() == [0.0] * 4
    assert scores[:, 1].tolist() == pytest.approx([1.0, 0.5**6, 0.0, 0.0])


def test_assigner_topk_keeps_best_aligned():
    gt = [0.0, 0.0, 40.0, 10.0]
    points = [[5, 5], [15, 5], [25, 5], [35, 5]]
    preds = [[0, 0, 40, 10], [0, 0, 20, 10], [0, 0, 30, 10], [0, 0, 10, 10]]  # IoU 1, 0.5, 0.75, 0.25
    _, _, _, fg = assign(points, preds, [gt], [0], topk=2)
    assert fg.tolist() == [True, False, True, False]
    _, _, _, fg = assign(points, preds, [gt], [0], topk=10)
    assert fg.tolist() == [True] * 4


def test_assigner_ambiguous_anchor_goes_to_higher_iou():
    gt_a, gt_b = [0.0, 0.0, 20.0, 20.0], [10.0, 0.0, 40.0, 20.0]
    points = [[15, 10], [5, 10], [35, 10]]  # the first lies in both boxes
    # anchor 0 predicts [10, 0, 30, 20]: IoU 1/3 with A, 2/3 with B
    preds = [[10, 0, 30, 20], gt_a, gt_b]
    labels, boxes, scores, fg = assign(points, preds, [gt_a, gt_b], [0, 1])
    assert fg.tolist() == [True, True, True]
    assert labels.tolist() == [1, 0, 1]
    assert torch.equal(boxes[0], torch.tensor(gt_b))
    assert scores[0, 0] == 0 and scores[0, 1] > 0


def test_assigner_never_assigns_padding():
    real, padded = [0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 60.0, 40.0]
    points = [[5, 5], [30, 10], [50, 30]]
    preds = [real, padded, padded]
    labels, _, scores, fg = assign(points, preds, [real, padded], [0, -1], gt_mask=[True, False])
    assert fg.tolist() == [True, False, False]
    assert labels.tolist() == [0, 2, 2]
    assert scores[1:].abs().sum() == 0
    # an image with padding only
    _, _, scores, fg = assign(points, preds, [padded], [-1], gt_mask=[False])
    assert not fg.any() and scores.abs().sum() == 0


def test_assigner_targets_normalised_as_tood():
    g = torch.Generator().manual_seed(0)
    points, _ = make_anchors([(20, 20), (10, 10)], (8, 16))
    batch, num_classes = 2, 4
    centres = points[None].expand(batch, -1, -1)
    sizes = torch.rand(batch, len(points), 2, generator=g) * 40 + 8
    pred_boxes = torch.cat((centres - sizes / 2, centres + sizes / 2), dim=-1)
    pred_scores = torch.rand(batch, len(points), num_classes, generator=g)
    gt_boxes = torch.tensor(
        [
            [[10.0, 10, 70, 60], [50, 40, 150, 150], [0, 0, 0, 0]],
            [[30.0, 30, 90, 120], [100, 20, 140, 80], [5, 5, 40, 40]],
        ]
    )
    gt_labels = torch.tensor([[0, 3, -1], [1, 2, 2]])
    gt_mask = torch.tensor([[True, True, False], [True, True, True]])
    labels, boxes, scores, fg = TaskAlignedAssigner()(pred_scores, pred_boxes, points, gt_labels, gt_boxes, gt_mask)
    assert scores.shape == (batch, len(points), num_classes) and fg.sum() > 0
    assert (scores.sum(-1)[~fg] == 0).all() and (labels[~fg] == num_classes).all()
    for b in range(batch):
        for m in range(3):
            mine = fg[b] & (boxes[b] == gt_boxes[b, m]).all(-1)
            if not gt_mask[b, m]:
                assert not mine.any()
                continue
            assert 0 < mine.sum() <= 10
            assert (labels[b, mine] == gt_labels[b, m]).all()
            ious = box_iou(gt_boxes[b, m][None], pred_boxes[b, mine])[0]
            assert scores[b, mine, gt_labels[b, m]].max().item() == pytest.approx(ious.max().item(), rel=1e-5)
            # the ordering of targets is that of the alignment metric
            metric = pred_scores[b, mine, gt_labels[b, m]] * ious**6
            assert torch.argmax(scores[b, mine, gt_labels[b, m]]) == torch.argmax(metric)


def test_bbox_dist_round_trip():
    g = torch.Generator().manual_seed(1)
    points = torch.rand(50, 2, generator=g) * 100
    dist = torch.rand(50, 4, generator=g) * 30
    boxes = dist2bbox(dist, points)
    assert torch.allclose(bbox2dist(points, boxes), dist, atol=1e-5)
    assert bbox2dist(points, boxes, max_dist=14.99).max() <= 14.99


def test_anchor_points_are_cell_centres():
    points, strides = make_anchors([(2, 3), (1, 1)], (8, 16))
    assert points[:3].tolist() == [[4, 4], [12, 4], [20, 4]]
    assert points[3].tolist() == [4, 12]
    assert points[-1].tolist() == [8, 8]
    assert strides[:, 0].tolist() == [8] * 6 + [16]


def test_distribution_focal_loss_hand_computed():
    logits = torch.randn(1, 16, generator=torch.Generator().manual_seed(2))
    log_p = logits.log_softmax(-1)[0]
    expected = -(0.7 * log_p[2] + 0.3 * log_p[3])
    assert distribution_focal_loss(logits, torch.tensor([2.3])).item() == pytest.approx(expected.item(), rel=1e-5)


def test_complete_iou():
    boxes = torch.tensor([[3.0, 4, 30, 20], [0, 0, 1, 5]])
    assert torch.allclose(1 - complete_iou(boxes, boxes), torch.zeros(2), atol=1e-6)
    # equal aspect ratios: IoU 1/7, centre distance^2 2 over enclosing diagonal^2 18
    a, b = torch.tensor([0.0, 0, 2, 2]), torch.tensor([1.0, 1, 3, 3])
    assert complete_iou(a, b).item() == pytest.approx(1 / 7 - 1 / 9, abs=1e-6)
    # different aspect ratios: IoU 0.5, rho^2/c^2 = 1/20, v = 4/pi^2 (atan 1 - atan 2)^2, alpha = v / (0.5 + v)
    a, b = torch.tensor([0.0, 0, 4, 2]), torch.tensor([0.0, 0, 2, 2])
    v = 4 / math.pi**2 * (math.atan(1) - math.atan(2)) ** 2
    assert complete_iou(a, b).item() == pytest.approx(0.5 - 0.05 - v / (0.5 + v) * v, abs=1e-6)
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(20, 2, generator=g) * 50
    p, t = torch.cat((xy, xy + torch.rand(20, 2, generator=g) * 40 + 1), -1), torch.cat((xy + 3, xy + 30), -1)
    assert torch.allclose(1 - complete_iou(p, t), complete_box_iou_loss(p, t), atol=1e-5)


def _tiny_batch():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, SIZE, SIZE, generator=g) * 0.2
    targets = [
        {"boxes": torch.tensor([[20.0, 30, 80, 100], [90, 90, 150, 140]]), "labels": torch.tensor([0, 2])},
        {"boxes": torch.tensor([[10.0, 10, 60, 50]]), "labels": torch.tensor([1])},
    ]
    for image, target in zip(images, targets, strict=True):
        for (x1, y1, x2, y2), label in zip(target["boxes"].int().tolist(), target["labels"].tolist(), strict=True):
            image[label, y1:y2, x1:x2] = 1.0  # the class is the colour of the rectangle
    return images, targets


def test_train_outputs_loss_and_overfit():
    torch.manual_seed(0)
    model = build_yolo("n", num_classes=NUM_CLASSES).train()
    images, targets = _tiny_batch()
    outputs = model(images)
    assert [tuple(o.shape) for o in outputs] == [(2, 64 + NUM_CLASSES, SIZE // s, SIZE // s) for s in (8, 16, 32)]
    loss_fn = model.loss_fn()
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(20):
        total, parts = loss_fn(model(images), targets)
        assert torch.isfinite(total) and set(parts) == {"box", "cls", "dfl", "num_fg"}
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        losses.append(total.item())
    assert parts["num_fg"] > 0
    assert all(p.grad is not None for p in model.parameters())
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses


def test_loss_with_empty_and_bad_targets():
    model = build_yolo("n", num_classes=NUM_CLASSES).train()
    images, targets = _tiny_batch()
    outputs = model(images)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}
    for batch_targets in ([targets[0], empty], [empty, empty]):
        total, parts = model.loss_fn()(outputs, batch_targets)
        assert torch.isfinite(total)
        total.backward(retain_graph=True)
    assert parts["num_fg"] == 0 and parts["box"] == 0
    with pytest.raises(DataError, match="3 classes"):
        model.loss_fn()(outputs, [targets[0], {"boxes": torch.ones(1, 4), "labels": torch.tensor([3])}])


def test_eval_output_and_predict():
    torch.manual_seed(0)
    model = build_yolo("n", num_classes=NUM_CLASSES).eval()
    images, _ = _tiny_batch()
    with torch.no_grad():
        decoded = model(images)
    assert decoded.shape == (2, NUM_ANCHORS, 4 + NUM_CLASSES)
    boxes, scores = decoded[..., :4], decoded[..., 4:]
    assert boxes.min() >= 0 and boxes.max() <= SIZE
    assert ((boxes[..., 2:] - boxes[..., :2]) >= 0).all()
    assert ((scores > 0) & (scores < 1)).all()
    detections = model.predict(images, conf=0.001, iou=0.6)
    assert len(detections) == 2 and not model.training
    assert set(detections[0]) == {"boxes", "scores", "labels"}
    assert len(detections[0]["boxes"]) <= 300


def test_nms():
    decoded = torch.tensor(
        [
            [
                [0.0, 0, 10, 10, 0.9, 0.1],
                [1.0, 1, 10, 10, 0.8, 0.1],  # duplicate of the first, same class
                [1.0, 1, 10, 10, 0.1, 0.7],  # same place, other class
                [50.0, 50, 60, 60, 0.2, 0.1],  # below conf
            ]
        ]
    )
    (result,) = nms(decoded, conf=0.25, iou=0.5)
    assert result["labels"].tolist() == [0, 1]
    assert result["scores"].tolist() == pytest.approx([0.9, 0.7])
    (result,) = nms(decoded, conf=0.05, iou=0.5, multi_label=True, max_det=3)
    assert len(result["boxes"]) == 3


@pytest.mark.parametrize("dynamo", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["torchscript", "dynamo"])
def test_onnx_export_matches_torch(tmp_path, dynamo):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = build_yolo("n", num_classes=NUM_CLASSES).eval()
    path = tmp_path / "yolo.onnx"
    example = (torch.rand(2, 3, SIZE, SIZE),)
    names = {"input_names": ["input"], "output_names": ["output"], "opset_version": 18}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:  # the exporter cnnlab.export tries first
            program = torch.onnx.export(
                model, example, dynamo=True, dynamic_shapes=({0: torch.export.Dim.DYNAMIC},), verbose=False, **names
            )
            program.save(str(path), external_data=False)
        else:
            torch.onnx.export(
                model,
                example,
                str(path),
                dynamo=False,
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                **names,
            )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = torch.rand(3, 3, SIZE, SIZE)  # a batch size the export never saw
    with torch.no_grad():
        expected = model(images).numpy()
    (got,) = session.run(None, {"input": images.numpy()})
    assert got.shape == (3, NUM_ANCHORS, 4 + NUM_CLASSES)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_registry_backbone_adapter():
    model = build_yolo("n", num_classes=NUM_CLASSES, backbone="mobilenetv2_100")
    assert model.backbone.feature_info.reduction() == [8, 16, 32]
    outputs = model.train()(torch.rand(2, 3, SIZE, SIZE))
    assert [o.shape[-1] for o in outputs] == [20, 10, 5]
    total, _ = model.loss_fn()(outputs, _tiny_batch()[1])
    assert torch.isfinite(total)
    assert model.eval()(torch.rand(1, 3, SIZE, SIZE)).shape == (1, NUM_ANCHORS, 4 + NUM_CLASSES)
    with pytest.raises(ConfigError, match="strides"):
        build_yolo("n", num_classes=NUM_CLASSES, backbone="cifar_resnet20")


def test_bad_input_size_and_options():
    model = build_yolo("n", num_classes=NUM_CLASSES).eval()
    with pytest.raises(ConfigError, match=r"150x150 .* 128x128 or 160x160"):
        model(torch.rand(1, 3, 150, 150))
    with pytest.raises(ConfigError, match="scale"):
        build_yolo("xl", num_classes=NUM_CLASSES)
    with pytest.raises(ConfigError, match="num_classes"):
        build_yolo("n", num_classes=0)


@pytest.mark.parametrize("scale", ["n", "s", "m"])
def test_scales_build(scale):
    model = build_yolo(scale, num_classes=NUM_CLASSES)
    assert model.num_classes == NUM_CLASSES and model.strides == (8, 16, 32)
    assert model.backbone.feature_info.reduction() == [8, 16, 32]
    assert model.neck.out_channels == tuple(model.backbone.feature_info.channels())


def test_a_design_spec_is_a_backbone(tmp_path) -> None:
    from pathlib import Path

    zoo = Path(__file__).resolve().parents[1] / "src/cnnlab/design/zoo/spec_resnet18.yaml"
    spec = tmp_path / "my_backbone.yaml"
    spec.write_text(zoo.read_text().replace("name: spec_resnet18", "name: my_backbone"))
    model = build_yolo("n", num_classes=2, backbone=str(spec)).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 96, 96))
    assert out.shape == (1, 9 + 36 + 144, 4 + 2)
