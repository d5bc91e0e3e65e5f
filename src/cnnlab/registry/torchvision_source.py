"""torchvision's classifiers that timm lacks, by a static table: listing them imports nothing."""

from __future__ import annotations

from functools import partial
from typing import Any

from cnnlab.errors import CheckpointError
from cnnlab.registry.core import Registry
from cnnlab.registry.entry import ModelEntry
from cnnlab.registry.papers import paper_of
from cnnlab.weights.offline import offline_refs

# name -> (family, first conv, classifier); all have torchvision IMAGENET1K_V1 weights
CLASSIFIERS: dict[str, tuple[str, str, str]] = {
    "alexnet": ("alexnet", "features.0", "classifier.6"),
    "googlenet": ("googlenet", "conv1.conv", "fc"),
    "squeezenet1_0": ("squeezenet", "features.0", "classifier.1"),
    "squeezenet1_1": ("squeezenet", "features.0", "classifier.1"),
    "shufflenet_v2_x0_5": ("shufflenet_v2", "conv1.0", "fc"),
    "shufflenet_v2_x1_0": ("shufflenet_v2", "conv1.0", "fc"),
    "shufflenet_v2_x1_5": ("shufflenet_v2", "conv1.0", "fc"),
    "shufflenet_v2_x2_0": ("shufflenet_v2", "conv1.0", "fc"),
    "mnasnet0_5": ("mnasnet", "layers.0", "classifier.1"),
    "mnasnet0_75": ("mnasnet", "layers.0", "classifier.1"),
    "mnasnet1_0": ("mnasnet", "layers.0", "classifier.1"),
    "mnasnet1_3": ("mnasnet", "layers.0", "classifier.1"),
    "mobilenet_v2": ("mobilenetv2", "features.0.0", "classifier.1"),
    "mobilenet_v3_small": ("mobilenetv3", "features.0.0", "classifier.3"),
    "mobilenet_v3_large": ("mobilenetv3", "features.0.0", "classifier.3"),
}


def _build(name: str, **kwargs: Any) -> Any:
    from cnnlab.models.torchvision_classifiers import build

    return build(name, **kwargs)


def register_all(registry: Registry) -> None:
    for name, (family, first_conv, classifier) in CLASSIFIERS.items():
        paper, year = paper_of(family)
        registry.register(
            ModelEntry(
                name=name,
                source="torchvision",
                family=family,
                paper=paper,
                year=year,
                pretrained=(*offline_refs(name), "hub:torchvision/IMAGENET1K_V1"),
                first_conv=first_conv,
                classifier=classifier,
                hub_attributes=(("transform_input", True),) if name == "googlenet" else (),
                builder=partial(_build, name),
            )
        )


def download_state_dict(name: str) -> dict[str, Any]:
    """torchvision's ImageNet weights for ``name`` (downloads to the torch hub cache)."""
    from torchvision.models import get_model_weights

    weights = get_model_weights(name).IMAGENET1K_V1
    try:
        return weights.get_state_dict(progress=False)
    except (OSError, RuntimeError) as exc:
        raise CheckpointError(
            f"could not download {name} weights from {weights.url} ({str(exc).splitlines()[0][:160]}); "
            "without internet use --pretrained PATH or an offline set"
        ) from None
