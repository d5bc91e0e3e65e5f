"""One name space for every architecture: cnnlab's own, torchvision's and timm's.

create_model("resnet50", num_classes=10, pretrained=True)
list_models(task="classify", family="mobilenetv3", pattern="*small*")
model_info("lenet5")
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.registry.core import Registry
from cnnlab.registry.entry import TASKS, ModelEntry
from cnnlab.registry.papers import paper_of

__all__ = [
    "REGISTRY",
    "ModelEntry",
    "create_model",
    "get_entry",
    "list_models",
    "model_info",
    "register_model",
]

REGISTRY = Registry()
REGISTRY.add_source("cnnlab", lambda _: importlib.import_module("cnnlab.models.catalog"))
REGISTRY.add_source(
    "torchvision", lambda reg: importlib.import_module("cnnlab.registry.torchvision_source").register_all(reg)
)
REGISTRY.add_source("timm", lambda reg: importlib.import_module("cnnlab.registry.timm_source").register_all(reg))


def register_model(
    *,
    family: str,
    input_size: tuple[int, ...],
    num_classes: int = 1000,
    task: str = "classify",
    name: str | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    spatial_dims: tuple[int, ...] = (2,),
    pretrained: tuple[str, ...] = (),
    first_conv: str | None = None,
    classifier: str | None = None,
    paper: str | None = None,
    year: int | None = None,
    description: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers a builder ``fn(*, num_classes, in_chans, **options)`` under its name."""

    def decorate(builder: Callable[..., Any]) -> Callable[..., Any]:
        known_paper, known_year = paper_of(family)
        channels = input_size[0]
        REGISTRY.register(
            ModelEntry(
                name=name or builder.__name__,
                source="cnnlab",
                family=family,
                task=task,
                paper=paper or known_paper,
                year=year or known_year,
                input_size=tuple(input_size),
                num_classes=num_classes,
                mean=tuple(mean) if mean else (0.5,) * channels,
                std=tuple(std) if std else (0.5,) * channels,
                spatial_dims=spatial_dims,
                pretrained=pretrained,
                first_conv=first_conv,
                classifier=classifier,
                description=description or (builder.__doc__ or "").strip().split("\n")[0],
                builder=builder,
            )
        )
        return builder

    return decorate


def get_entry(name: str) -> ModelEntry:
    return REGISTRY.get(name)


def list_models(
    task: str | None = None, family: str | None = None, pattern: str | None = None, source: str | None = None
) -> list[ModelEntry]:
    """Registry entries, filtered. ``pattern`` is a shell-style wildcard over names."""
    if task is not None and task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    entries = list(REGISTRY)
    if task:
        entries = [e for e in entries if e.task == task]
    if family:
        entries = [e for e in entries if e.family == family]
    if source:
        entries = [e for e in entries if e.source == source]
    if pattern:
        entries = [e for e in entries if fnmatch.fnmatchcase(e.name, pattern)]
    return entries


def model_info(name: str) -> dict[str, Any]:
    """Metadata of one architecture, JSON-ready."""
    return REGISTRY.get(name).to_dict()


def _check_count(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{field} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ConfigError(f"{field} must be at least {minimum}, got {value}")
    return value


def _check_options(entry: ModelEntry, options: dict[str, Any]) -> None:
    accepted = entry.option_names()
    if accepted is None:
        return
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) or "none"
        raise ConfigError(f"model {entry.name!r} does not take option(s) {', '.join(unknown)}; it accepts: {allowed}")


def is_spec_path(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or Path(name).suffix in (".yaml", ".yml")


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    pretrained: bool | str | Path = False,
    features_only: bool = False,
    out_indices: tuple[int, ...] | None = None,
    **options: Any,
) -> Any:
    """Build a registered architecture.

    Args:
        name: registry name (``cnnlab models list``), optionally with a timm pretrained tag
            (``resnet50.a1_in1k``), or the path of a design spec (``my_net.yaml``).
        num_classes: size of the output layer; the entry's default when None. 0 removes the head.
        in_chans: input channels; the entry's default when None. Pretrained stems are adapted.
        pretrained: False; True for the best weights available (a packaged offline set, else the
            hub); ``"hub"``; or the path of a ``.safetensors``/``.pth`` file.
        features_only: return a module producing the feature maps of each stage (for necks).
        out_indices: which stages when ``features_only``.
        **options: architecture options (``drop_rate``, ``act``, ...), checked against the builder.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"model name must be a non-empty string, got {name!r}")
    if is_spec_path(name):
        from cnnlab.design import create_from_spec

        net = create_from_spec(name, num_classes=0 if features_only else num_classes, in_chans=in_chans, **options)
        if features_only:  # a designed backbone for a detector or segmenter: its stages' maps
            from cnnlab.models.features import FeatureExtractor

            return FeatureExtractor(net, out_indices)
        return net
    entry = REGISTRY.get(name)
    num_classes = _check_count("num_classes", entry.num_classes if num_classes is None else num_classes, 0)
    in_chans = _check_count("in_chans", entry.input_size[0] if in_chans is None else in_chans, 1)
    _check_options(entry, options)
    if entry.source == "timm":
        from cnnlab.registry.timm_source import create_timm_model

        return create_timm_model(
            name,
            entry,
            num_classes=num_classes,
            in_chans=in_chans,
            pretrained=pretrained,
            features_only=features_only,
            out_indices=out_indices,
            **options,
        )
    model = entry.builder(num_classes=num_classes, in_chans=in_chans, **options)
    if pretrained:
        from cnnlab.weights import load_pretrained

        load_pretrained(model, entry, pretrained, num_classes=num_classes, in_chans=in_chans)
    if features_only:
        from cnnlab.models.features import FeatureExtractor

        if hasattr(model, "reset_classifier"):
            model.reset_classifier(0)
        return FeatureExtractor(model, out_indices)
    return model
