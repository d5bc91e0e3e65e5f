"""Class names of the label sets pretrained weights were trained on (shipped inside timm, offline)."""

from __future__ import annotations

from functools import cache

from cnnlab.errors import ConfigError


@cache
def label_names(label_set: str) -> tuple[str, ...]:
    if label_set != "imagenet-1k":
        raise ConfigError(f"unknown label set {label_set!r}")
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    return tuple(info.index_to_description(i) for i in range(info.num_classes()))
