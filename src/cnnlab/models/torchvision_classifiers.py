"""torchvision classifiers that timm lacks, given the model contract.

torchvision models have no forward_features/forward_head. Rather than wrapping them (which would
rename every state-dict key and break torchvision checkpoints), each built model gets a subclass of
its own class that adds the contract from a declared layout: which children form the trunk, how the
head pools, and which stage modules are features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from torch import nn

from cnnlab.models.contract import feature_stage


@dataclass(frozen=True)
class Layout:
    trunk: tuple[str, ...]  # children applied in order by forward_features
    pool: str  # child applied before flattening, "mean" for a global mean, "" for none
    head: str  # child holding the classifier: a Sequential whose last layer is final, or a Linear
    stages: tuple[str, ...]  # feature stage modules, shallow to deep
    first_conv: str
    classifier: str


LAYOUTS: dict[str, Layout] = {
    "alexnet": Layout(
        ("features",),
        "avgpool",
        "classifier",
        ("features.1", "features.4", "features.11", "features.12"),
        "features.0",
        "classifier.6",
    ),
    "googlenet": Layout(
        (
            "conv1",
            "maxpool1",
            "conv2",
            "conv3",
            "maxpool2",
            "inception3a",
            "inception3b",
            "maxpool3",
            "inception4a",
            "inception4b",
            "inception4c",
            "inception4d",
            "inception4e",
            "maxpool4",
            "inception5a",
            "inception5b",
        ),
        "avgpool",
        "fc",
        ("conv1", "conv3", "inception3b", "inception4e", "inception5b"),
        "conv1.conv",
        "fc",
    ),
    "squeezenet1_0": Layout(
        ("features",),
        "",
        "classifier",
        ("features.1", "features.5", "features.10", "features.12"),
        "features.0",
        "classifier.1",
    ),
    "squeezenet1_1": Layout(
        ("features",),
        "",
        "classifier",
        ("features.1", "features.4", "features.7", "features.12"),
        "features.0",
        "classifier.1",
    ),
    "shufflenet_v2": Layout(
        ("conv1", "maxpool", "stage2", "stage3", "stage4", "conv5"),
        "mean",
        "fc",
        ("conv1", "maxpool", "stage2", "stage3", "conv5"),
        "conv1.0",
        "fc",
    ),
    "mnasnet": Layout(
        ("layers",),
        "mean",
        "classifier",
        ("layers.7", "layers.8", "layers.9", "layers.11", "layers.16"),
        "layers.0",
        "classifier.1",
    ),
    "mobilenet_v2": Layout(
        ("features",),
        "adaptive",
        "classifier",
        ("features.1", "features.3", "features.6", "features.13", "features.18"),
        "features.0.0",
        "classifier.1",
    ),
    "mobilenet_v3_large": Layout(
        ("features",),
        "avgpool",
        "classifier",
        ("features.1", "features.3", "features.6", "features.12", "features.16"),
        "features.0.0",
        "classifier.3",
    ),
    "mobilenet_v3_small": Layout(
        ("features",),
        "avgpool",
        "classifier",
        ("features.0", "features.1", "features.3", "features.8", "features.12"),
        "features.0.0",
        "classifier.3",
    ),
}


def layout_for(name: str) -> Layout:
    if name.startswith("shufflenet_v2"):
        return LAYOUTS["shufflenet_v2"]
    if name.startswith("mnasnet"):
        return LAYOUTS["mnasnet"]
    return LAYOUTS[name]


class TorchvisionContract:
    """Mixed into a torchvision model's own class; reads ``self._layout``."""

    _layout: Layout

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if getattr(self, "transform_input", False):  # GoogLeNet's pretrained weights expect it
            x = self._transform_input(x)
        for name in self._layout.trunk:
            x = getattr(self, name)(x)
        return x

    def _split_head(self) -> tuple[nn.Module, nn.Module]:
        head = getattr(self, self._layout.head)
        if isinstance(head, nn.Sequential):
            return head[:-1], head[-1]
        return nn.Identity(), head

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pool = self._layout.pool
        if not pool:  # SqueezeNet: a 1x1 conv classifier, then global pooling
            if pre_logits:
                return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
            return torch.flatten(getattr(self, self._layout.head)(x), 1)
        if pool == "mean":
            x = x.mean((2, 3))
        elif pool == "adaptive":
            x = nn.functional.adaptive_avg_pool2d(x, 1)
        else:
            x = getattr(self, pool)(x)
        x = torch.flatten(x, 1)
        if getattr(self, "dropout", None) is not None and self._layout.head == "fc":
            x = self.dropout(x)
        body, final = self._split_head()
        x = body(x)
        return x if pre_logits else final(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.get_submodule(self._layout.classifier)

    def reset_classifier(self, num_classes: int) -> None:
        old = self.get_classifier()
        if num_classes <= 0:
            new: nn.Module = nn.Identity()
        elif isinstance(old, nn.Conv2d):
            new = nn.Conv2d(old.in_channels, num_classes, kernel_size=1)
        else:
            new = nn.Linear(self.num_features, num_classes)
        parent, _, leaf = self._layout.classifier.rpartition(".")
        setattr(self.get_submodule(parent) if parent else self, leaf, new)
        self.num_classes = num_classes


_CLASSES: dict[type, type] = {}


def _contract_class(cls: type) -> type:
    if cls not in _CLASSES:
        _CLASSES[cls] = type(cls.__name__, (TorchvisionContract, cls), {"__module__": __name__})
    return _CLASSES[cls]


def build(name: str, *, num_classes: int, in_chans: int, **options: Any) -> nn.Module:
    """A torchvision classifier with the model contract, any in_chans and num_classes (0 = no head)."""
    if name == "googlenet":
        options.setdefault("aux_logits", False)
        options.setdefault("init_weights", True)
    model = torchvision.models.get_model(name, weights=None, num_classes=max(num_classes, 1), **options)
    layout = layout_for(name)
    model.__class__ = _contract_class(type(model))
    model._layout = layout
    final = model.get_classifier()
    model.num_features = final.in_features if isinstance(final, nn.Linear) else final.in_channels
    model.num_classes = num_classes
    if num_classes == 0:
        model.reset_classifier(0)
    if in_chans != 3:
        _replace_stem(model, layout.first_conv, in_chans)
    model.feature_info = _measure_stages(model, layout, in_chans)
    return model


def _replace_stem(model: nn.Module, path: str, in_chans: int) -> None:
    old: nn.Conv2d = model.get_submodule(path)
    new = nn.Conv2d(
        in_chans,
        old.out_channels,
        old.kernel_size,
        old.stride,
        old.padding,
        old.dilation,
        old.groups,
        old.bias is not None,
    )
    parent, _, leaf = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def _measure_stages(model: nn.Module, layout: Layout, in_chans: int, size: int = 128) -> list[dict[str, Any]]:
    """Channels and reduction of each stage, read off one small forward pass."""
    shapes: dict[str, tuple[int, ...]] = {}
    handles = [
        model.get_submodule(stage).register_forward_hook(
            lambda _m, _i, out, stage=stage: shapes.__setitem__(stage, tuple(out.shape))
        )
        for stage in layout.stages
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model.forward_features(torch.zeros(1, in_chans, size, size))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    stages = []
    for stage in layout.stages:
        _, channels, height, _ = shapes[stage]
        reduction = 2 ** round(torch.log2(torch.tensor(size / height)).item())
        stages.append(feature_stage(channels, reduction, stage))
    return stages
