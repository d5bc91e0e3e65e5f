"""Segmentation end to end through the task seam: train, evaluate, export with mask parity, predict
masks (PNG / .npz) at each input's own size, and the mistakes a user can make."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data.segmentation import make_segment_shapes
from cnnlab.errors import ConfigError
from cnnlab.train import train_model


@pytest.fixture(scope="module")
def shapes2d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shapes with every shape's class merged into one "shape" class, rewritten through
    classes.txt and the mask PNGs the reader reads. Telling circles from stars takes the 5-class set
    hundreds of steps on CPU (measured: mIoU 0.24 after 400 steps of 64 px); finding the shapes takes
    tens, which is what a test can afford (the 5-class quality is the benchmark's to show)."""
    root = make_segment_shapes(
        tmp_path_factory.mktemp("seg") / "shapes", dims=2, n_train=64, n_val=8, n_test=8, size=64, seed=0
    )
    for file in root.glob("*/masks/*.png"):
        Image.fromarray((np.array(Image.open(file)) > 0).astype(np.uint8)).save(file)
    (root / "classes.txt").write_text("background\nshape\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def run2d(shapes2d: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = train_model(
        data=str(shapes2d),
        model="unet",
        input_size=[64, 64],
        epochs=30,
        batch_size=8,
        lr=1e-2,
        model_options={"base_width": 8},
        out=tmp_path_factory.mktemp("runs") / "unet",
        progress=False,
    )
    return result.path


@pytest.mark.slow
def test_a_short_training_learns_the_shapes_well_above_chance(run2d: Path) -> None:
    metrics = json.loads((run2d / "metrics.json").read_text())
    # Chance: everything background scores mIoU 0.45 (background IoU ~0.9, shape 0); measured ~0.85.
    assert metrics["miou"] > 0.7, metrics["iou_per_class"]
    assert metrics["iou_per_class"]["shape"] > 0.5
    assert set(metrics["iou_per_class"]) == {"background", "shape"}
    record = json.loads((run2d / "run.json").read_text())
    assert record["task"]["task"] == "segment" and record["task"]["loss"] == "ce+dice"
    history = (run2d / "metrics.csv").read_text().splitlines()
    assert "val_miou" in history[0]


@pytest.mark.slow
def test_export_draws_the_same_masks_and_predict_writes_them(run2d: Path, shapes2d: Path, tmp_path: Path) -> None:
    from cnnlab.export import export_run
    from cnnlab.runtime import predict

    report = export_run(run2d, "onnx", pick_runtime=False)
    parity = report.parity["onnx"]
    assert parity.passed and parity.task_agreement["pixel_agreement"] >= 0.999
    assert "test split" in parity.data  # real images, not random inputs

    # A larger image than the 64 px training crops: tiled by the sliding window, not resized.
    big = np.concatenate([np.array(Image.open(p)) for p in sorted((shapes2d / "test" / "images").iterdir())[:2]], 1)
    Image.fromarray(big).save(tmp_path / "wide.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    results = predict(
        str(run2d), [str(tmp_path / "wide.png"), str(tmp_path / "broken.png")], draw=str(tmp_path / "out")
    )
    wide, broken = results
    assert "error" in broken
    assert wide["mask_size"] == [64, 128]
    mask = np.array(Image.open(wide["mask"]))
    assert mask.shape == (64, 128) and mask.max() < 2
    assert Image.open(wide["overlay"]).size == (128, 64)
    onnx = predict(str(run2d / "export" / "model.onnx"), [str(tmp_path / "wide.png")])[0]
    assert "mask" not in onnx and onnx["class_share"]  # no folder: shares only, nothing written


@pytest.mark.slow
def test_evaluate_reports_iou_and_dice_per_class(run2d: Path) -> None:
    from cnnlab.evaluate import evaluate_run

    metrics = evaluate_run(run2d, split="val", write=False)
    assert {"miou", "mdice", "pixel_accuracy", "iou_per_class", "dice_per_class"} <= set(metrics)
    assert "hd95_mm" not in metrics  # a 3D measurement


@pytest.mark.slow
def test_volumes_train_evaluate_with_hd95_export_and_predict(tmp_path: Path) -> None:
    from cnnlab.export import export_run
    from cnnlab.runtime import predict

    data = make_segment_shapes(tmp_path / "vol", dims=3, n_train=6, n_val=2, n_test=2, size=32, seed=0)
    result = train_model(
        data=str(data),
        model="unet3d",
        input_size=[32, 32, 32],
        epochs=1,
        batch_size=2,
        model_options={"base_width": 4, "depth": 3},
        out=tmp_path / "run",
        progress=False,
    )
    assert json.loads((result.path / "card.json").read_text())["input_size"] == [1, 32, 32, 32]
    assert "hd95_mm" in result.metrics and "hd95_skipped" in result.metrics
    report = export_run(result.path, "onnx", pick_runtime=False)
    assert report.parity["onnx"].passed
    volume = next((data / "test" / "images").iterdir())
    found = predict(str(result.path), [str(volume)], draw=str(tmp_path / "masks"))[0]
    assert found["mask_size"] == [32, 32, 32]
    assert np.load(found["mask"])["label"].shape == (32, 32, 32)


def test_a_2d_model_on_volumes_is_a_clear_error(tmp_path: Path) -> None:
    data = make_segment_shapes(tmp_path / "vol", dims=3, n_train=3, n_val=1, n_test=1, size=16, seed=0)
    with pytest.raises(ConfigError, match="unet3d"):
        train_model(data=str(data), model="unet", epochs=1, out=tmp_path / "run", progress=False)


def test_training_crops_must_suit_the_model(shapes2d: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="divisible by 16"):
        train_model(data=str(shapes2d), model="unet", input_size=[60, 60], epochs=1, out=tmp_path / "r", progress=False)


def test_loss_choice_is_for_segmentation_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--loss"):
        train_model(data="builtin:digits", model="lenet5", loss="dice", epochs=1, out=tmp_path / "r", progress=False)


def test_unknown_loss_names_the_choices(shapes2d: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ce\\+dice"):
        train_model(
            data=str(shapes2d),
            model="unet",
            input_size=[64, 64],
            loss="hinge",
            epochs=1,
            model_options={"base_width": 4},
            out=tmp_path / "r",
            progress=False,
        )


def test_task_tiles_inputs_larger_than_the_window_and_agreement_counts_pixels() -> None:
    from cnnlab.tasks import build_task

    task = build_task("segment", num_classes=3, input_size=[1, 16, 16])
    calls = []

    def pointwise(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape[2:]))
        return torch.cat([x, -x, x * 0], dim=1)

    image = torch.randn(1, 1, 40, 24)
    logits = task.infer(pointwise, image)
    assert logits.shape == (1, 3, 40, 24) and set(calls) == {(16, 16)}
    assert torch.allclose(logits, pointwise(image), atol=1e-5)
    other = logits.clone()
    other[0, 2, 0, 0] = 100.0  # one pixel of 960 changes class
    agreement = task.agreement(logits, other)
    assert agreement["pixel_agreement"] == pytest.approx(1 - 1 / 960, abs=1e-6) and not agreement["passed"]
    assert task.predict(logits)[0]["mask"].shape == (40, 24)


def test_masks_are_written_in_the_frame_of_their_input(tmp_path: Path) -> None:
    import nibabel as nib

    from cnnlab.data.segmentation import load_volume
    from cnnlab.runtime.mask_files import save_masks

    # A non-cubic NIfTI (x, y, z) = (5, 4, 3): the reader's [D, H, W] is (3, 4, 5), and the written
    # mask must land back on the scan's own voxels and affine so a viewer overlays it.
    affine = np.diag([0.6, 0.7, 2.5, 1.0])
    nib.save(nib.Nifti1Image(np.zeros((5, 4, 3), dtype=np.float32), affine), str(tmp_path / "scan.nii.gz"))
    assert load_volume(tmp_path / "scan.nii.gz").shape == (1, 3, 4, 5)
    mask = (np.arange(60) % 4).reshape(3, 4, 5).astype(np.uint8)
    image = np.zeros((6, 7, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    flat = (np.arange(42) % 3).reshape(6, 7).astype(np.uint8)
    results = [
        {"input": str(tmp_path / "scan.nii.gz"), "mask": torch.from_numpy(mask)},
        {"input": str(tmp_path / "cube.npz"), "mask": torch.from_numpy(mask)},
        {"input": str(tmp_path / "photo.png"), "mask": torch.from_numpy(flat)},
        {"input": str(tmp_path / "broken.png"), "error": "unreadable"},
    ]
    save_masks(results, tmp_path / "out", num_classes=4)
    written = nib.load(results[0]["mask"])
    assert results[0]["mask"].endswith("scan.mask.nii.gz") and written.shape == (5, 4, 3)
    assert np.allclose(written.affine, affine)
    assert np.array_equal(np.asarray(written.dataobj).transpose(2, 1, 0), mask)
    assert np.array_equal(np.load(results[1]["mask"])["label"], mask)
    assert np.array_equal(np.array(Image.open(results[2]["mask"])), flat)
    assert Image.open(results[2]["overlay"]).size == (7, 6) and "mask" not in results[3]


def test_predict_matches_channels_and_reports_a_volume_it_cannot_take(tmp_path: Path) -> None:
    from cnnlab.registry import create_model
    from cnnlab.runs import ModelCard
    from cnnlab.runtime.predictor import Predictor

    class Torch(Predictor):  # the model in memory, as a runtime would run it
        def __init__(self, card: ModelCard, model: torch.nn.Module) -> None:
            super().__init__(card)
            self.model = model.eval()

        def run(self, batch: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return self.model(batch)

    grey = ModelCard(architecture="unet", num_classes=2, in_chans=1, input_size=[1, 16, 16], mean=[0.5],
                     std=[0.25], task="segment", class_names=["background", "thing"])  # fmt: skip
    model = create_model("unet", num_classes=2, in_chans=1, base_width=4, depth=2)
    Image.fromarray(np.zeros((20, 24, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    found = Torch(grey, model).predict([str(tmp_path / "rgb.png")])[0]
    assert found["mask_size"] == [20, 24]  # the colour photo went in as grey, tiled by 16 px windows

    volumes = ModelCard(architecture="unet3d", num_classes=2, in_chans=1, input_size=[1, 8, 8, 8], mean=[0.0],
                        std=[1.0], task="segment", class_names=["background", "thing"])  # fmt: skip
    np.save(tmp_path / "two.npy", np.zeros((2, 8, 8, 8), dtype=np.float32))
    model3d = create_model("unet3d", num_classes=2, in_chans=1, base_width=2, depth=2)
    found = Torch(volumes, model3d).predict([str(tmp_path / "two.npy")])[0]
    assert "2 channels for a model trained on 1" in found["error"]


def test_a_dataset_folder_is_predicted_on_its_images_not_its_masks(tmp_path: Path) -> None:
    from cnnlab.runtime import expand_inputs

    root = make_segment_shapes(tmp_path / "seg", dims=2, n_train=2, n_val=1, n_test=1, size=32, seed=0)
    found = expand_inputs([root])
    assert len(found) == 4 and all(p.parent.name == "images" for p in found)
    masks = root / "train" / "masks"
    assert len(expand_inputs([masks])) == 2  # asked for by name: taken as inputs


def test_a_runtime_that_draws_other_masks_is_not_chosen_however_small_its_diff(monkeypatch) -> None:
    from cnnlab.export import runtime_choice
    from cnnlab.runs import ModelCard

    logits = torch.zeros(2, 2, 16, 16)
    logits[:, 1] = 1.0  # class 1 everywhere, decidedly ...
    logits[:, 1, :2, :4] = 1e-5  # ... except 8 of 256 pixels per image, nearly tied: class 1 by a hair
    swapped = logits.clone()
    swapped[:, 0, :2, :4] = 2e-5  # 3% of the pixels flip to class 0, every value within 2e-5

    class Fixed(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return logits

    class FlippingRuntime:
        def run(self, x: torch.Tensor) -> torch.Tensor:
            return swapped

    monkeypatch.setattr(runtime_choice, "artifact_predictor", lambda path, card, precision: FlippingRuntime())
    card = ModelCard(
        architecture="unet", num_classes=2, in_chans=1, input_size=[1, 16, 16], mean=[0.5], std=[0.5],
        task="segment", class_names=["background", "shape"],
    )  # fmt: skip
    candidates, best = runtime_choice.choose_runtime(
        Fixed(), card, {"onnx": Path("model.onnx")}, torch.zeros(2, 1, 16, 16), rounds=1, runs=1
    )
    onnx = next(c for c in candidates if c.runtime == "onnxruntime")
    assert onnx.max_abs_diff < onnx.tolerance  # the outputs are close ...
    assert onnx.task_agreement["pixel_agreement"] == pytest.approx(1 - 8 / 256)  # ... the masks are not
    assert not onnx.passed and best.runtime == "torch"
