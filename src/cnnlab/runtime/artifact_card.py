"""Where an exported artifact keeps its model card, so it runs without the run that made it.

Embedded where the format allows (ONNX metadata_props, TorchScript extra files, OpenVINO rt_info),
and always as a sidecar ``<artifact>.card.json`` beside it (the only place for TFLite).
"""

from __future__ import annotations

import json
from pathlib import Path

from cnnlab.errors import CheckpointError
from cnnlab.runs import ModelCard
from cnnlab.runs.atomic import atomic_write_text

CARD_KEY = "cnnlab_card"


def sidecar_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".card.json")


def write_sidecar(artifact: Path, card: ModelCard) -> Path:
    return atomic_write_text(sidecar_path(artifact), card.to_json() + "\n")


def read_card(artifact: Path) -> ModelCard:
    """The card of an artifact: embedded first, then the sidecar."""
    embedded = _embedded(artifact)
    if embedded is not None:
        return ModelCard.from_json(embedded, origin=f"{artifact} metadata")
    sidecar = sidecar_path(artifact)
    if sidecar.is_file():
        return ModelCard.read(sidecar)
    raise CheckpointError(
        f"{artifact} carries no model card (none embedded, no {sidecar.name} beside it); export it with "
        "`cnnlab export RUN` so pre-processing and class names travel with it"
    )


def _embedded(artifact: Path) -> str | None:
    suffix = artifact.suffix
    if suffix == ".onnx":
        import onnx

        try:
            model = onnx.load(str(artifact), load_external_data=False)
        except Exception as exc:
            raise CheckpointError(f"{artifact} is not a readable ONNX model ({str(exc)[:120]})") from None
        return next((p.value for p in model.metadata_props if p.key == CARD_KEY), None)
    if suffix == ".pt" and artifact.name.endswith(".ts.pt"):
        import zipfile

        try:
            with zipfile.ZipFile(artifact) as archive:
                name = next((n for n in archive.namelist() if n.endswith(f"extra/{CARD_KEY}.json")), None)
                return archive.read(name).decode("utf-8") if name else None
        except zipfile.BadZipFile:
            raise CheckpointError(f"{artifact} is not a readable TorchScript archive") from None
    if suffix == ".xml":
        return None  # the sidecar is read; OpenVINO's rt_info copy is for other OpenVINO tools
    return None


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
