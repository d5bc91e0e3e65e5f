"""The model card: everything needed to rebuild a model and feed it correctly, in plain JSON.

It travels with the weights (safetensors metadata and card.json) and with every exported artifact,
so pre-processing is never guessed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cnnlab.errors import CheckpointError

CARD_VERSION = 1


@dataclass
class ModelCard:
    architecture: str  # registry name, or the design spec's name when ``spec`` is set
    num_classes: int
    in_chans: int
    input_size: list[int]  # (C, H, W), (C, L) or (C, D, H, W)
    mean: list[float]
    std: list[float]
    task: str = "classify"
    class_names: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)  # architecture options given to create_model
    spec: dict[str, Any] | None = None  # a design spec, inlined, when the architecture is one
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    pretrained: str | None = None  # where the starting weights came from
    shapes_from_weights: bool = False  # structurally pruned: layer widths are read from the weights
    versions: dict[str, str] = field(default_factory=dict)
    card_version: int = CARD_VERSION

    def __post_init__(self) -> None:
        self.input_size = list(self.input_size)
        self.mean = list(self.mean)
        self.std = list(self.std)

    @property
    def spatial_dims(self) -> int:
        return len(self.input_size) - 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "model card") -> ModelCard:
        if not isinstance(data, dict):
            raise CheckpointError(f"{origin} is not a JSON object")
        known = {f.name for f in fields(cls)}
        required = ("architecture", "num_classes", "in_chans", "input_size", "mean", "std")
        missing = [k for k in required if k not in data]
        if missing:
            raise CheckpointError(f"{origin} lacks field(s) {', '.join(missing)}; it was not written by cnnlab")
        if data.get("card_version", 1) > CARD_VERSION:
            raise CheckpointError(
                f"{origin} has card_version {data['card_version']}, newer than this cnnlab reads "
                f"({CARD_VERSION}); upgrade cnnlab"
            )
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, text: str, origin: str = "model card") -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{origin} is not valid JSON ({exc})") from None
        return cls.from_dict(data, origin)

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CheckpointError(f"cannot read model card {path}: {exc.strerror}") from None
        return cls.from_json(text, origin=str(path))
