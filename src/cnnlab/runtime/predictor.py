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
from cnnlab.tasks import task_for_card


class Predictor:
    runtime = "base"

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.preprocess = Preprocessor(card)
        self.task = task_for_card(card)

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict_tensor(self, batch: torch.Tensor, top_k: int = 5) -> list[dict[str, Any]]:
        return self.task.predict(self.run(batch), top_k=top_k)

    def predict(self, inputs: Sequence[ImageInput], top_k: int = 5, batch_size: int = 32) -> list[dict[str, Any]]:
        """Predictions for each input, in order. An unreadable file gets an ``error`` entry, not an exception."""
        items: list[ImageInput] = []
        for item in inputs:
            if isinstance(item, (str, Path)):
                items += expand_inputs([item], volumes=self.card.spatial_dims == 3)
            else:
                items.append(item)
        results: list[dict[str, Any]] = [{} for _ in items]
        ready: list[tuple[int, torch.Tensor, tuple[int, int]]] = []
        for i, item in enumerate(items):
            name = str(item) if isinstance(item, (str, Path)) else f"input[{i}]"
            results[i]["input"] = name
            try:
                ready.append((i, *self.preprocess.image_and_size(item)))
            except CnnlabError as exc:
                results[i]["error"] = str(exc)
        infer = getattr(self.task, "infer", None)
        if infer is not None:  # masks at each image's own size: one image at a time, tiled by windows
            for i, tensor, _ in ready:
                results[i].update(self.task.predict(infer(self.run, tensor[None]))[0])
            return results
        # Tasks whose outputs live in input pixels (boxes) map them back to each original image.
        restore = getattr(self.task, "restore", None)
        for start in range(0, len(ready), batch_size):
            chunk = ready[start : start + batch_size]
            outputs = self.predict_tensor(torch.stack([t for _, t, _ in chunk]), top_k=top_k)
            for (i, _, size), prediction in zip(chunk, outputs, strict=True):
                results[i].update(restore(prediction, size, self.card.input_size) if restore else prediction)
        return results


class TorchPredictor(Predictor):
    runtime = "torch"

    def __init__(self, model: torch.nn.Module, card: ModelCard) -> None:
        super().__init__(card)
        self.model = model.eval()

    @torch.inference_mode()
    def run(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model(batch)


RUNTIMES = ("auto", "torch", "torch.compile", "onnxruntime", "openvino", "torchscript", "tflite")
_ARTIFACTS = {
    "onnxruntime": "model.onnx",
    "openvino": "model.xml",
    "torchscript": "model.ts.pt",
    "tflite": "model.tflite",
}


def load_predictor(target: str | Path, runtime: str = "auto", threads: int | None = None) -> Predictor:
    """A Predictor for a run directory, an exported artifact, or a registry model (its pretrained weights).

    For a run, ``auto`` is the runtime its export recommended (fastest with parity passed), else torch.
    """
    from cnnlab.runs import load_run
    from cnnlab.runtime.artifact_card import read_card
    from cnnlab.runtime.backends import CompiledTorchPredictor, artifact_predictor

    if runtime not in RUNTIMES:
        raise CnnlabError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    path = Path(target)
    if path.is_file() and path.suffix != ".safetensors":
        return artifact_predictor(path, read_card(path), threads)
    if not path.exists():
        if runtime not in ("auto", "torch"):
            raise CnnlabError(f"{target} is not a run directory or artifact; runtime {runtime} needs one")
        return pretrained_predictor(str(target))
    loaded = load_run(path)
    precision, artifact_name = "f32", None
    if runtime == "auto":
        runtime, precision, artifact_name = _recommended(loaded.path)
    if runtime == "torch":
        return TorchPredictor(loaded.model, loaded.card)
    if runtime == "torch.compile":
        return CompiledTorchPredictor(loaded.model, loaded.card, threads)
    artifact = loaded.path / "export" / (artifact_name or _ARTIFACTS[runtime])
    if not artifact.is_file():
        raise CnnlabError(
            f"{loaded.path} has no {runtime} artifact; run `cnnlab export {loaded.path} "
            f"--format {dict(onnxruntime='onnx').get(runtime, runtime)}` first"
        )
    return artifact_predictor(artifact, read_card(artifact), threads, precision)


def _recommended(run: Path) -> tuple[str, str, str | None]:
    """The runtime, precision and artifact the run's export (or compression) verified and chose; torch otherwise."""
    import json

    parity = run / "export" / "parity.json"
    if parity.is_file():
        record = json.loads(parity.read_text(encoding="utf-8"))
        choice = record.get("recommended_runtime")
        if record.get("passed") and (choice in _ARTIFACTS or choice == "torch"):
            return choice, record.get("recommended_precision", "f32"), record.get("recommended_artifact")
    return "torch", "f32", None


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
