"""Grad-CAM: heat maps over the input, from the registry contract, for any model with a spatial map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.errors import ConfigError
from cnnlab.explain import grad_cam
from cnnlab.registry import create_model
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cnnlab.train import train_model

    out = tmp_path_factory.mktemp("cam") / "run"
    train_model(data="builtin:digits", model="cifar_resnet20", epochs=4, out=out, progress=False)
    return out


@pytest.mark.parametrize("name", ["cifar_resnet20", "resnet18", "mobilenetv3_small_050", "lenet5"])
def test_maps_have_the_input_size_and_depend_on_the_class(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, in_chans=3).eval()
    x = torch.randn(2, 3, 64, 64)
    cam, classes = grad_cam(model, x)
    assert cam.shape == (2, 64, 64) and classes == model(x).argmax(1).tolist()
    assert float(cam.min()) >= 0.0 and float(cam.max()) <= 1.0 + 1e-6
    others, _ = grad_cam(model, x, targets=[(c + 1) % 5 for c in classes])
    assert not torch.allclose(cam, others)  # another class, another map
    assert all(p.grad is None for p in model.parameters())  # leaves no gradients behind


def test_the_evidence_is_on_the_object(digits_run: Path) -> None:
    """Digits are bright strokes on black: the trained model's evidence should sit on the strokes."""
    from cnnlab.data import open_dataset
    from cnnlab.runs import load_run
    from cnnlab.runtime.predictor import TorchPredictor

    run = load_run(digits_run)
    predictor = TorchPredictor(run.model, run.card)
    split = open_dataset("builtin:digits").splits["test"]
    batch = torch.stack([predictor.preprocess.image(split[i][0]) for i in range(40)])
    cam, _ = grad_cam(run.model, batch)
    ink = batch[:, 0] > batch[:, 0].mean(dim=(1, 2), keepdim=True)
    on_ink = [(cam[i][ink[i]].mean() > cam[i][~ink[i]].mean()).item() for i in range(len(batch))]
    assert sum(on_ink) >= 0.7 * len(batch), f"evidence on the strokes in only {sum(on_ink)}/{len(batch)} images"


def test_predict_cam_cli_writes_overlays(digits_run: Path, tmp_path: Path) -> None:
    from cnnlab.data import open_dataset

    split = open_dataset("builtin:digits").splits["test"]
    image = np.asarray(split[0][0]).squeeze()  # 8x8 grey
    (tmp_path / "in").mkdir()
    Image.fromarray(image.astype(np.uint8)).save(tmp_path / "in" / "digit.png")
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    result = run_cli("predict", str(digits_run), str(tmp_path / "in"), "--cam", "--cam-dir", str(tmp_path / "cam"))
    assert result.returncode == 0, result.stderr
    overlay = Image.open(tmp_path / "cam" / "digit.cam.png")
    assert overlay.mode == "RGB" and min(overlay.size) >= 224
    assert "unreadable" in result.stdout  # the broken file is reported, not fatal
    exported = run_cli("predict", str(tmp_path / "in" / "digit.png"), str(tmp_path / "in"), "--cam")
    assert exported.returncode == 2 and "run directory" in exported.stderr


def test_a_model_without_a_spatial_map_is_refused() -> None:
    with pytest.raises(ConfigError, match="registry model"):
        grad_cam(torch.nn.Linear(4, 2), torch.randn(1, 4))
