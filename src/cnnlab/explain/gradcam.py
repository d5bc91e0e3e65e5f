"""Grad-CAM (Selvaraju et al. 2017): the class score's gradient, averaged over each channel of the
last spatial feature map, weights that map; the ReLU of the weighted sum, upsampled to the input,
shows where the evidence for the class lies.

It uses the registry contract (``forward_features`` then ``forward_head``), so it works for every
registry model whose features are a spatial map, without naming a layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError, ConfigError


def grad_cam(
    model: nn.Module, batch: torch.Tensor, targets: Sequence[int] | None = None
) -> tuple[torch.Tensor, list[int]]:
    """Heat maps (N, H, W) in [0, 1] for ``targets`` (default: each image's predicted class)."""
    if not (hasattr(model, "forward_features") and hasattr(model, "forward_head")):
        raise ConfigError(
            f"Grad-CAM needs a registry model (forward_features/forward_head); got {type(model).__name__}"
        )
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            features = model.forward_features(batch)
            if features.dim() != batch.dim():
                raise ConfigError(
                    f"Grad-CAM needs a spatial feature map; {type(model).__name__}.forward_features gives shape "
                    f"{tuple(features.shape)} for input {tuple(batch.shape)}"
                )
            logits = model.forward_head(features)
            classes = list(targets) if targets is not None else logits.argmax(1).tolist()
            if len(classes) != len(batch) or not all(0 <= c < logits.shape[1] for c in classes):
                raise ConfigError(
                    f"Grad-CAM targets {classes} do not fit {len(batch)} images and {logits.shape[1]} classes"
                )
            score = logits[torch.arange(len(batch)), classes].sum()
            gradient = torch.autograd.grad(score, features)[0]  # parameters' .grad stay untouched
    finally:
        model.train(was_training)
    spatial = tuple(range(2, features.dim()))
    weights = gradient.mean(dim=spatial, keepdim=True)
    cam = F.relu((weights * features).sum(1, keepdim=True)).detach()
    mode = {3: "linear", 4: "bilinear", 5: "trilinear"}[batch.dim()]
    cam = F.interpolate(cam, size=batch.shape[2:], mode=mode, align_corners=False)[:, 0]
    flat = cam.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    cam = (cam - lo.view(-1, *[1] * (cam.dim() - 1))) / (hi - lo).clamp(min=1e-12).view(-1, *[1] * (cam.dim() - 1))
    return cam, classes


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB uint8: the image (H, W) or (H, W, C) in [0, 1] under a 'jet' heat map of ``cam``."""
    from matplotlib import colormaps

    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    heat = colormaps["jet"](cam)[..., :3]
    return (255 * np.clip((1 - alpha) * rgb + alpha * heat, 0, 1)).astype(np.uint8)


def _unnormalise(x: torch.Tensor, card: Any) -> np.ndarray:
    mean = torch.tensor(card.mean).view(-1, 1, 1)
    std = torch.tensor(card.std).view(-1, 1, 1)
    image = (x * std + mean).clamp(0, 1)
    return image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()


def explain_images(
    run: str | Path, inputs: Sequence[str | Path], out: str | Path, top_k: int = 5
) -> list[dict[str, Any]]:
    """Predictions for images plus a Grad-CAM overlay PNG each (for the predicted class) under ``out``."""
    from PIL import Image

    from cnnlab.runs import load_run
    from cnnlab.runtime.predictor import TorchPredictor

    path = Path(run)
    if not path.is_dir():
        raise CnnlabError(f"--cam needs a run directory (its weights, for the gradients); {run} is not one")
    loaded = load_run(path)
    predictor = TorchPredictor(loaded.model, loaded.card)
    results = predictor.predict(list(inputs), top_k=top_k)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        if "error" in result:
            continue
        x = predictor.preprocess.image(result["input"])
        cam, classes = grad_cam(loaded.model, x[None])
        picture = overlay(_unnormalise(x, loaded.card), cam[0].numpy())
        target = folder / f"{Path(result['input']).stem}.cam.png"
        Image.fromarray(picture).resize((max(224, picture.shape[1]), max(224, picture.shape[0])), Image.NEAREST).save(
            target
        )
        result["cam"] = str(target)
        result["cam_class"] = classes[0]
    return results
