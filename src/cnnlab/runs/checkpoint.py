"""Weights as safetensors with the model card in its metadata: loadable without unpickling anything."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CheckpointError
from cnnlab.runs.atomic import atomic_write_bytes, atomic_write_text
from cnnlab.runs.card import ModelCard
from cnnlab.runs.statedict import load_state, read_state_dict

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
_CARD_KEY = "cnnlab_card"


def _tensors_for_saving(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors that share memory (tied weights, views): give each its own."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key in seen or not tensor.is_contiguous():
            tensor = tensor.clone().contiguous()
        seen.add(key)
        out[name] = tensor
    return out


def save_weights(path: str | Path, state: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save

    return atomic_write_bytes(path, save(_tensors_for_saving(state), metadata=metadata))


def save_model(model: nn.Module, card: ModelCard, directory: str | Path) -> Path:
    """Write model.safetensors (card in its metadata) and card.json into ``directory``, atomically."""
    directory = Path(directory)
    save_weights(directory / WEIGHTS_FILE, model.state_dict(), {_CARD_KEY: card.to_json()})
    atomic_write_text(directory / CARD_FILE, card.to_json() + "\n")
    return directory / WEIGHTS_FILE


def read_card(directory: str | Path) -> ModelCard:
    """The run's card: card.json, else the copy inside model.safetensors."""
    directory = Path(directory)
    if (directory / CARD_FILE).is_file():
        return ModelCard.read(directory / CARD_FILE)
    weights = directory / WEIGHTS_FILE
    if weights.is_file():
        metadata = _read_metadata(weights)
        if _CARD_KEY in metadata:
            return ModelCard.from_json(metadata[_CARD_KEY], origin=f"{weights} metadata")
    raise CheckpointError(
        f"{directory} has no model card ({CARD_FILE}, or one inside {WEIGHTS_FILE}); it is not a cnnlab run "
        "directory, or its training never saved a model"
    )


def _read_metadata(path: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc}); it may be truncated") from None


def build_from_card(card: ModelCard) -> nn.Module:
    """The architecture a card describes, freshly initialised."""
    if card.spec is not None:
        from cnnlab.design import build_from_dict

        return build_from_dict(card.spec, num_classes=card.num_classes, in_chans=card.in_chans)
    from cnnlab.registry import create_model

    return create_model(card.architecture, num_classes=card.num_classes, in_chans=card.in_chans, **card.options)


def load_weights_into(model: nn.Module, path: str | Path) -> None:
    """Strictly load a cnnlab safetensors file; any mismatch is an error naming the tensors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist; the run has no saved weights")
    state = read_state_dict(path)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:4])}{' …' if len(keys) > 4 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise CheckpointError(f"{path} does not match the architecture in its card ({detail})")
    load_state(model, state)


@dataclass
class LoadedRun:
    model: nn.Module
    card: ModelCard
    path: Path

    def read_json(self, name: str) -> dict[str, Any] | None:
        file = self.path / name
        if not file.is_file():
            return None
        try:
            return json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{file} is not valid JSON ({exc})") from None


def load_run(path: str | Path, *, weights: str = WEIGHTS_FILE) -> LoadedRun:
    """Rebuild the exact model of a run directory, in eval mode. No pickle is involved."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"run directory {path} does not exist")
    if path.is_file():
        if path.suffix == ".safetensors":
            path, weights = path.parent, path.name
        else:
            raise CheckpointError(f"{path} is a file; give a run directory (or its model.safetensors)")
    card = read_card(path)
    model = build_from_card(card)
    if card.shapes_from_weights:
        from cnnlab.models.resize import resize_to_state_dict

        resize_to_state_dict(model, read_state_dict(path / weights))
    load_weights_into(model, path / weights)
    model.eval()
    return LoadedRun(model=model, card=card, path=path)
