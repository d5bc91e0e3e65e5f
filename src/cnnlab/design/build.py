"""From a spec (file, dict or object) to a registered, contract-following network."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from cnnlab.design.network import DesignedNet
from cnnlab.design.spec import NetworkSpec, load_spec
from cnnlab.errors import ConfigError, DuplicateModelError
from cnnlab.registry.entry import IMAGENET_MEAN, IMAGENET_STD, ModelEntry


def with_overrides(spec: NetworkSpec, num_classes: int | None = None, in_chans: int | None = None) -> NetworkSpec:
    changes: dict[str, Any] = {}
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ConfigError(f"num_classes must be a non-negative integer, got {num_classes!r}")
        changes["num_classes"] = num_classes
    if in_chans is not None:
        if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
            raise ConfigError(f"in_chans must be a positive integer, got {in_chans!r}")
        changes["input_size"] = [in_chans, *spec.input_size[1:]]
    return dataclasses.replace(spec, **changes) if changes else spec


def build(
    spec: NetworkSpec, *, num_classes: int | None = None, in_chans: int | None = None, register: bool = True
) -> DesignedNet:
    """Check the spec's shapes, build the network, and register the spec's name in the model registry.

    A spec with a segmentation head builds a segmenter (``cnnlab.design.segmenter``), not a DesignedNet.
    """
    spec = with_overrides(spec, num_classes, in_chans)
    if spec.head.segments:
        from cnnlab.design.segmenter import build_segmenter

        model = build_segmenter(spec)
    else:
        model = DesignedNet(spec)
    if register:
        register_spec(spec)
    return model


def build_from_dict(
    data: dict[str, Any], *, num_classes: int | None = None, in_chans: int | None = None
) -> DesignedNet:
    return build(NetworkSpec.from_dict(data), num_classes=num_classes, in_chans=in_chans, register=False)


def create_from_spec(
    path: str | Path, *, num_classes: int | None = None, in_chans: int | None = None, **options: Any
) -> DesignedNet:
    if options:
        raise ConfigError(f"a design spec takes no options ({', '.join(options)}); put them in the YAML file")
    return build(load_spec(path), num_classes=num_classes, in_chans=in_chans)


def spec_entry(spec: NetworkSpec, source: str) -> ModelEntry:
    from cnnlab.weights.offline import offline_refs

    rgb = spec.in_chans == 3

    def builder(*, num_classes: int = spec.num_classes, in_chans: int = spec.in_chans) -> DesignedNet:
        return build(spec, num_classes=num_classes, in_chans=in_chans, register=False)

    builder.__doc__ = spec.description
    return ModelEntry(
        name=spec.name,
        source=source,
        family=spec.family,
        task=spec.task,
        paper=spec.paper,
        year=spec.year,
        input_size=tuple(spec.input_size),
        num_classes=spec.num_classes,
        mean=tuple(spec.mean or (IMAGENET_MEAN if rgb else (0.5,) * spec.in_chans)),
        std=tuple(spec.std or (IMAGENET_STD if rgb else (0.5,) * spec.in_chans)),
        spatial_dims=(spec.spatial_dims,),
        pretrained=offline_refs(spec.name),
        first_conv=("encoder.body.model." if spec.head.segments else "")
        + ("stem.0.conv" if spec.stem else "stages.0.0.conv"),
        classifier="head" if spec.head.segments else "head.fc",
        description=spec.description or f"design spec {spec.name}",
        builder=builder,
    )


def register_spec(spec: NetworkSpec, source: str = "spec") -> ModelEntry:
    """Register ``spec`` under its name. A user spec may replace an earlier version of itself; a name
    owned by timm, torchvision or cnnlab's zoo may not be taken."""
    from cnnlab.registry import REGISTRY

    entry = spec_entry(spec, source)
    # Asking the registry loads the other sources as needed, so a timm name cannot be shadowed by accident.
    existing = REGISTRY.get(spec.name) if (source == "spec" and spec.name in REGISTRY) else None
    if existing is not None:
        if existing.source != "spec" or source != "spec":
            raise DuplicateModelError(
                f"spec name {spec.name!r} is taken by a {existing.source} model; give your spec another name"
            )
        REGISTRY.unregister(spec.name)
    return REGISTRY.register(entry)
