"""Detection end to end through the task seam: shapes data from the CLI, a short real training of the
YOLO-style detector, export parity on boxes, prediction in the original image's pixels, and the
pieces in between (letterbox, NMS selection, agreement) on hand-made cases."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from cnnlab.data.box_transforms import Letterbox, as_box_target, build_box_transform, unletterbox_boxes
from cnnlab.errors import ConfigError
from cnnlab.export import export_run
from cnnlab.tasks import build_task
from cnnlab.tasks.detect import select_boxes
from tests.conftest import run_cli

SIDE = 96


# --- the pieces -----------------------------------------------------------------------------------


def test_letterbox_keeps_the_aspect_and_boxes_map_back_exactly() -> None:
    image = tv_tensors.Image(torch.zeros(3, 60, 120, dtype=torch.uint8))
    target = as_box_target(torch.tensor([[12.0, 6.0, 60.0, 54.0]]), torch.tensor([1]), 60, 120)
    out, moved = Letterbox(96)(image, target)
    assert out.shape == (3, 96, 96)
    assert torch.allclose(moved["boxes"], torch.tensor([[9.6, 4.8, 48.0, 43.2]]))
    assert (out[:, 48:, :] == 114).all()  # padded below the scaled image, which is 48 px high
    back = unletterbox_boxes(moved["boxes"].as_subclass(torch.Tensor), (60, 120), 96)
    assert torch.allclose(back, torch.tensor([[12.0, 6.0, 60.0, 54.0]]), atol=1e-4)


def test_box_transform_refuses_a_non_square_input_and_unknown_augment() -> None:
    with pytest.raises(ConfigError, match="must be square"):
        build_box_transform(input_size=[3, 96, 128], mean=[0.0] * 3, std=[1.0] * 3, train=False)
    with pytest.raises(ConfigError, match="for detection: choose one of none, light, strong"):
        build_box_transform(input_size=[3, 96, 96], mean=[0.0] * 3, std=[1.0] * 3, train=True, augment="mosaic9")


def test_selection_takes_the_best_class_thresholds_and_suppresses_per_class() -> None:
    decoded = torch.tensor(
        [
            [
                [10.0, 10.0, 50.0, 50.0, 0.9, 0.1],
                [12.0, 12.0, 50.0, 50.0, 0.8, 0.0],  # overlaps the first, same class: suppressed
                [12.0, 12.0, 50.0, 50.0, 0.0, 0.7],  # same place, other class: kept
                [60.0, 60.0, 90.0, 90.0, 0.0005, 0.0],  # below the evaluation threshold
            ]
        ]
    )
    found = select_boxes(decoded)[0]
    assert found["labels"].tolist() == [0, 1]
    assert found["scores"].tolist() == pytest.approx([0.9, 0.7])
    with pytest.raises(ConfigError, match=r"\[batch, boxes, 4 \+ classes\]"):
        select_boxes(torch.zeros(2, 6))


def test_agreement_fails_when_a_runtime_moves_a_box() -> None:
    task = build_task("detect", num_classes=2, class_names=["a", "b"])
    reference = torch.tensor([[[10.0, 10.0, 50.0, 50.0, 0.9, 0.0], [60.0, 60.0, 90.0, 90.0, 0.0, 0.8]]])
    assert task.agreement(reference, reference.clone())["passed"]
    shifted = reference.clone()
    shifted[0, 0, :4] += 2.0
    verdict = task.agreement(reference, shifted)
    assert not verdict["passed"] and verdict["min_matched_iou"] < 0.99 and verdict["images_with_same_count"] == "1/1"
    dropped = reference.clone()
    dropped[0, 1, 5] = 0.1  # below the predict threshold now: one box fewer
    assert task.agreement(reference, dropped)["images_with_same_count"] == "0/1"


# --- on real data -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("detect") / "shapes"
    made = run_cli(
        "data", "make", "shapes", "--task", "detect", "--out", str(out), "--format", "yolo",
        "--size", str(SIDE), "--train", "160", "--val", "24", "--test", "24",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def trained(shapes: Path) -> Path:
    run = shapes.parent / "run"
    result = run_cli(
        "train", "--data", str(shapes), "--model", "yolo_n", "--input-size", str(SIDE), "--epochs", "10",
        "--batch-size", "8", "--lr", "0.002", "--out", str(run), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def test_data_info_reports_box_statistics(shapes: Path) -> None:
    info = run_cli("data", "info", str(shapes), "--json")
    assert info.returncode == 0, info.stderr[-2000:]
    described = json.loads(info.stdout)
    assert described["task"] == "detect" and described["classes"] == ["circle", "square", "triangle", "star"]
    stats = described["splits"]["train"]["box_stats"]
    assert described["splits"]["train"]["size"] == 160 and stats["boxes"] == sum(
        described["splits"]["train"]["class_counts"]
    )
    assert 1 <= stats["per_image"]["mean"] <= 6 and stats["images_without_boxes"] == 0
    text = run_cli("data", "info", str(shapes))
    assert "boxes," in text.stdout and "small/medium/large" in text.stdout


def test_data_convert_round_trips_through_the_cli(shapes: Path, tmp_path: Path) -> None:
    converted = run_cli("data", "convert", str(shapes), str(tmp_path / "coco"), "--format", "coco")
    assert converted.returncode == 0, converted.stderr[-2000:]
    assert "nothing skipped" in converted.stdout
    a = json.loads(run_cli("data", "info", str(shapes), "--json").stdout)
    b = json.loads(run_cli("data", "info", str(tmp_path / "coco"), "--json").stdout)
    assert a["splits"]["test"]["class_counts"] == b["splits"]["test"]["class_counts"]
    unknown = run_cli("data", "make", "cubes", "--out", str(tmp_path / "x"))
    assert unknown.returncode != 0 and "generates 'shapes'" in unknown.stderr


def test_a_short_training_finds_the_shapes(trained: Path) -> None:
    record = json.loads((trained / "run.json").read_text())
    assert record["task"]["task"] == "detect" and record["status"] == "completed"
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["images"] == 24
    # Chance is ~0.001. 200 steps of 8 images reach 0.19 here; the 20-minute benchmark reaches 0.95+.
    assert metrics["map50"] > 0.08, metrics
    assert set(metrics["ap50_per_class"]) == {"circle", "square", "triangle", "star"}
    rows = (trained / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    first, last = rows[1].split(","), rows[-1].split(",")
    column = header.index("val_map50")
    assert float(last[column]) > float(first[column]) + 0.08, rows


def test_exported_detector_draws_the_same_boxes(trained: Path) -> None:
    exported = run_cli("export", str(trained), "--format", "onnx", "--json")
    assert exported.returncode == 0, exported.stderr[-3000:]
    parity = json.loads((trained / "export" / "parity.json").read_text())["parity"]["onnx"]
    agreement = parity["task_agreement"]
    assert parity["passed"] and agreement["passed"] and agreement["boxes_compared"] > 0
    assert agreement["min_matched_iou"] >= 0.99


def test_predict_returns_boxes_in_the_original_image(trained: Path, shapes: Path, tmp_path: Path) -> None:
    from cnnlab.runtime import load_predictor

    source = sorted((shapes / "images" / "test").glob("*.png"))[0]
    large = tmp_path / "large.png"
    Image.open(source).resize((SIDE * 2, SIDE * 2), Image.BICUBIC).save(large)  # the model sees the same pixels
    predictor = load_predictor(trained, runtime="torch")
    square, doubled = predictor.predict([source, large])
    assert square["image_size"] == [SIDE, SIDE] and doubled["image_size"] == [SIDE * 2, SIDE * 2]
    assert square["detections"], "a trained detector finds something on a training-like image"
    a, b = np.array(square["detections"][0]["box"]), np.array(doubled["detections"][0]["box"])
    assert np.allclose(b, 2 * a, atol=3.0), (a, b)  # boxes in the pixels of the image that was given


def test_restore_undoes_the_letterbox_of_a_wide_image() -> None:
    task = build_task("detect", num_classes=2, class_names=["a", "b"])
    found = {"detections": [{"label": "a", "index": 0, "score": 0.9, "box": [8.0, 4.0, 40.0, 20.0]}]}
    restored = task.restore(found, (48, 192), (3, 96, 96))  # 192x48 scaled by 0.5 into the 96 square
    assert restored["image_size"] == [48, 192] and restored["detections"][0]["box"] == [16.0, 8.0, 80.0, 40.0]
    assert task.restore({"detections": []}, (10, 10), (3, 96, 96))["detections"] == []


def test_wrong_model_or_task_for_detection_data_says_what_to_do(shapes: Path) -> None:
    classifier = run_cli("train", "--data", str(shapes), "--model", "lenet5", "--epochs", "1", "--out", "x")
    assert classifier.returncode != 0 and "is a classify model; detection needs a detector" in classifier.stderr
    as_classify = run_cli("train", "--data", str(shapes), "--task", "classify", "--model", "lenet5", "--epochs", "1")
    assert as_classify.returncode != 0 and "holds detect data" in as_classify.stderr
    odd = run_cli("train", "--data", str(shapes), "--model", "yolo_n", "--input-size", "100", "--epochs", "1")
    assert odd.returncode != 0 and "multiple of 32" in odd.stderr
    small = run_cli("train", "--data", str(shapes), "--model", "ssd300_vgg16", "--input-size", "160", "--epochs", "1")
    assert small.returncode != 0 and "at least 268 px" in small.stderr and "--input-size 288" in small.stderr


def test_predict_draws_boxes_and_runs_on_video(trained: Path, shapes: Path, tmp_path: Path) -> None:
    import cv2

    frames = sorted((shapes / "images" / "test").glob("*.png"))[:5]
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (SIDE, SIDE))
    for frame in frames:
        writer.write(cv2.imread(str(frame)))
    writer.release()
    result = run_cli("predict", str(trained), str(frames[0]), str(video), "--draw", str(tmp_path / "drawn"), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    image, clip = json.loads(result.stdout)
    assert Path(image["drawn"]).is_file() and image["detections"]
    assert clip["frames"] == 5 and len(clip["detections"]) == 5 and clip["fps"] > 0
    assert Path(clip["output"]).stat().st_size > 1000
    assert cv2.VideoCapture(clip["output"]).get(cv2.CAP_PROP_FRAME_COUNT) == 5
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    failed = run_cli("predict", str(trained), str(broken))
    assert failed.returncode != 0 and "not a readable video file" in failed.stderr


@pytest.mark.parametrize(
    "name",
    [
        "retinanet_mobilenet_v2_fpn",
        "faster_rcnn_mobilenet_v2_fpn",
        "ssdlite320_mobilenet_v3_large",
        "fcos_resnet50_fpn",
    ],
)
def test_torchvision_detectors_follow_the_contract(name: str) -> None:
    from cnnlab.registry import create_model, get_entry

    assert get_entry(name).task == "detect"
    model = create_model(name, num_classes=3, pretrained_backbone=False)
    images = torch.rand(2, 3, SIDE, SIDE)
    targets = [
        {"boxes": torch.tensor([[10.0, 12.0, 50.0, 60.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},  # an image without objects
    ]
    model.train()
    loss, parts = model.loss_fn()(model(images), targets)
    assert torch.isfinite(loss) and parts
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert out.shape == (2, 100, 4 + 3)
    assert (out[..., 4:] >= 0).all() and (out[..., 4:] <= 1).all()
    with pytest.raises(ConfigError, match="RGB"):
        create_model(name, num_classes=3, in_chans=1, pretrained_backbone=False)


@pytest.mark.parametrize("name", ["retinanet_mobilenet_v2_fpn", "faster_rcnn_mobilenet_v2_fpn"])
def test_mobilenet_v2_detectors_put_their_smallest_anchors_on_a_stride_8_grid(name: str) -> None:
    """torchvision's default MobileNet FPN returns two stride-32 maps: a 160 px input gave 5x5 grids for
    13-56 px objects. The detectors see strides 8, 16, 32 and 64, smallest anchors on the finest."""
    from cnnlab.registry import create_model

    detector = create_model(name, num_classes=3, pretrained_backbone=False).detector
    grids = [f.shape[-1] for f in detector.backbone(torch.rand(1, 3, 160, 160)).values()]
    assert grids == [20, 10, 5, 3]
    generator = detector.anchor_generator if hasattr(detector, "anchor_generator") else detector.rpn.anchor_generator
    assert generator.sizes[0] == (16, 22) and len(generator.sizes) == len(grids)


def test_a_torchvision_detector_exports_one_image_per_run(tmp_path: Path) -> None:
    """Faster R-CNN (random weights, final class layers scaled so its scores are decisive) exported to
    TorchScript and ONNX: graphs fixed at one image, larger batches fed image by image in order, and
    the TorchScript trace draws exactly the boxes torch draws."""
    from cnnlab.export import ExportError
    from cnnlab.registry import create_model
    from cnnlab.runs import ModelCard, save_model
    from cnnlab.runtime.backends import artifact_predictor

    torch.manual_seed(0)
    model = create_model("faster_rcnn_mobilenet_v2_fpn", num_classes=4, pretrained_backbone=False).eval()
    with torch.no_grad():
        model.detector.roi_heads.box_predictor.cls_score.weight.mul_(30)
        model.detector.rpn.head.cls_logits.weight.mul_(30)
    card = ModelCard(
        architecture="faster_rcnn_mobilenet_v2_fpn", num_classes=4, in_chans=3, input_size=[3, SIDE, SIDE],
        mean=[0.0] * 3, std=[1.0] * 3, task="detect", class_names=list("abcd"),
        options={"pretrained_backbone": False},
    )  # fmt: skip
    save_model(model, card, tmp_path / "run")
    report = export_run(tmp_path / "run", "torchscript", pick_runtime=False)
    parity = report.parity["torchscript"]
    assert parity.passed and parity.task_agreement["boxes_compared"] > 0, parity
    assert parity.task_agreement["min_matched_iou"] == pytest.approx(1.0)
    with contextlib.suppress(ExportError):  # ONNX's NMS and RoIAlign are ONNX Runtime's: judged, not assumed
        export_run(tmp_path / "run", "onnx", pick_runtime=False)
    details = json.loads((tmp_path / "run" / "export" / "parity.json").read_text())["artifacts"]["onnx"]
    assert details["dynamic_batch"] is False and details["batch"] == 1 and "one image per run" in details["exporter"]
    images = torch.rand(3, 3, SIDE, SIDE)
    for artifact in ("model.onnx", "model.ts.pt"):
        predictor = artifact_predictor(tmp_path / "run" / "export" / artifact, card)
        together = predictor.run(images)
        assert together.shape == (3, 100, 4 + 4)
        for i in range(3):
            assert torch.equal(together[i], predictor.run(images[i : i + 1])[0]), artifact


def test_a_mobilenet_v2_detector_starts_from_the_offline_imagenet_weights() -> None:
    from cnnlab.registry import create_model

    pretrained = create_model("retinanet_mobilenet_v2_fpn", num_classes=3)
    classifier = create_model("mobilenet_v2", num_classes=1000, pretrained=True)
    ours = pretrained.detector.backbone.body.state_dict()["0.0.weight"]
    assert torch.equal(ours, classifier.state_dict()["features.0.0.weight"])


def test_a_pretrained_frozen_bn_detector_is_fine_tuned_at_a_lower_rate() -> None:
    from cnnlab.registry import create_model
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.prepare_detect import detection_plan

    config = TrainConfig(data="shapes", model="retinanet_mobilenet_v2_fpn", task="detect", batch_size=16)
    tuned = detection_plan(config, create_model("retinanet_mobilenet_v2_fpn", num_classes=3))
    scratch = detection_plan(
        config, create_model("retinanet_mobilenet_v2_fpn", num_classes=3, pretrained_backbone=False)
    )
    assert tuned.lr == pytest.approx(scratch.lr / 4) and "frozen BatchNorm" in tuned.reasoning[0]
    assert detection_plan(TrainConfig(data="shapes", model="yolo_n", task="detect", batch_size=16, lr=0.01)).lr == 0.01


def test_mosaic_boxes_follow_their_pixels(tmp_path: Path) -> None:
    from cnnlab.data.box_mosaic import Mosaic
    from cnnlab.data.detection import BoxRecord, DetectionSplit

    records = []
    for i, (x1, y1, x2, y2) in enumerate([(10, 10, 40, 30), (50, 20, 90, 60), (5, 60, 30, 90), (60, 70, 80, 85)]):
        canvas = np.full((96, 96, 3), 114, dtype=np.uint8)
        canvas[y1:y2, x1:x2] = (255, 0, 0)
        Image.fromarray(canvas).save(tmp_path / f"{i}.png")
        records.append(
            BoxRecord(str(tmp_path / f"{i}.png"), 96, 96, np.array([[x1, y1, x2, y2]], np.float32), np.array([i % 2]))
        )
    split = DetectionSplit(records, ["a", "b"])
    mosaic = Mosaic(split, 96, transform=lambda image, target: (image, target), p=1.0)
    for seed in range(5):
        torch.manual_seed(seed)
        image, target = mosaic[0]
        assert image.shape == (3, 96, 96) and 1 <= len(target["boxes"]) <= 4
        for box in target["boxes"].round().int().tolist():
            x1, y1, x2, y2 = box
            inside = image[:, y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].float()
            if inside.numel():
                assert inside[0].mean() > 200 and inside[1].mean() < 40, (seed, box)  # red, under every box
    with pytest.raises(ConfigError, match="for detection"):
        from cnnlab.data.transforms import build_transform

        build_transform(input_size=[3, 32, 32], mean=[0.5] * 3, std=[0.5] * 3, train=True, augment="mosaic")
