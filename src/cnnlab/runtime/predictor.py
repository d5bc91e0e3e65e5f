"""One Predictor interface over every runtime: raw images or tensors in, task predictions out.

    predictor = load_predictor("runs/digits")          # or an exported artifact (export issue)
    predictor.predict(["photo.jpg", "folder/"], top_k=3)

Subclasses implement ``run(batch)`` (the model on a pre-processed float batch -> outputs); the
pre-processing (card) and post-processing (task) are shared, so every runtime is fed identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import CnnlabError
from cnnlab.runs import ModelCard
from cnnlab.runtime.preprocess import ImageInput, Preprocessor, expand_inputs
from cnnlab.tasks import build_task


class Predictor:
    runtime = "base"

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.preprocess = Preprocessor(card)
        self.task = build_task(card.task, num_classes=card.num_classes, class_names=card.class_names)

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict_tensor(self, batch: torch.Tensor, top_k: int = 5) -> list[dict[str, Any]]:
        return self.task.predict(self.run(batch), top_k=top_k)

    def predict(self, inputs: Sequence[ImageInput], top_k: int = 5, batch_size: int = 32) -> list[dict[str, Any]]:
        """Predictions for each input, in order. An unreadable file gets an ``error`` entry, not an exception."""
        items: list[ImageInput] = []
        for item in inputs:
            items += expand_inputs([item]) if isinstance(item, (str, Path)) else [item]
        results: list[dict[str, Any]] = [{} for _ in items]
        ready: list[tuple[int, torch.Tensor]] = []
        for i, item in enumerate(items):
            name = str(item) if isinstance(item, (str, Path)) else f"input[{i}]"
            results[i]["input"] = name
            try:
                ready.append((i, self.preprocess.image(item)))
            except CnnlabError as exc:
                results[i]["error"] = str(exc)
        for start in range(0, len(ready), batch_size):
            chunk = ready[start : start + batch_size]
            outputs = self.predict_tensor(torch.stack([t for _, t in chunk]), top_k=top_k)
            for (i, _), prediction in zip(chunk, outputs, strict=True):
                results[i].update(prediction)
        return results


class TorchPredictor(Predictor):
    runtime = "torch"

    def __init__(self, model: torch.nn.Module, card: ModelCard) -> None:
        super().__init__(card)
        self.model = model.eval()

    @torch.inference_mode()
    def run(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model(batch)


def load_predictor(target: str | Path, runtime: str = "auto") -> Predictor:
    """A Predictor for a run directory, or for a registry model with its pretrained weights and labels."""
    from cnnlab.runs import load_run

    if runtime not in ("auto", "torch"):
        raise CnnlabError(f"runtime {runtime!r} is not available for {target}; available: torch")
    if Path(target).exists():
        loaded = load_run(target)
        return TorchPredictor(loaded.model, loaded.card)
    return pretrained_predictor(str(target))


def pretrained_predictor(name: str) -> TorchPredictor:
    """A registry model with its best pretrained weights, predicting the labels it was trained on."""
    from cnnlab.registry import create_model, get_entry
    from cnnlab.weights.labels import label_names

    entry = get_entry(name)
    model = create_model(name, pretrained=True)
    info = model.weights_info
    labels = list(label_names(info.labels)) if info.labels else None
    card = ModelCard(
        architecture=name,
        num_classes=entry.num_classes,
        in_chans=entry.input_size[0],
        input_size=list(entry.input_size),
        mean=list(info.mean or entry.mean),
        std=list(info.std or entry.std),
        class_names=labels,
        pretrained=info.source,
        interpolation="bilinear",
        crop_pct=0.875,
    )
    return TorchPredictor(model, card)
