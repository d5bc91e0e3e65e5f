"""cnnlab's own detectors in the registry: the YOLO-style one-stage, anchor-free family at three scales.

`cnnlab models list --task detect` shows them; `cnnlab train --task detect --model yolo_n` trains one.
A registry backbone replaces the built-in CSP one with ``--option backbone=NAME``.
"""

from __future__ import annotations

from typing import Any

from cnnlab.registry import register_model

_SIZE = (3, 320, 320)  # a default for real images; the shapes benchmark trains at 160


def _yolo(scale: str, num_classes: int, in_chans: int, backbone: str | None) -> Any:
    from cnnlab.models.yolo import build_yolo

    return build_yolo(scale, num_classes=num_classes, in_chans=in_chans, backbone=backbone)


@register_model(family="yolo", task="detect", input_size=_SIZE, num_classes=80, mean=(0.0,) * 3, std=(1.0,) * 3)
def yolo_n(*, num_classes: int = 80, in_chans: int = 3, backbone: str | None = None) -> Any:
    """YOLO-style anchor-free detector, nano scale (CSP backbone, PAN-FPN, decoupled DFL head)."""
    return _yolo("n", num_classes, in_chans, backbone)


@register_model(family="yolo", task="detect", input_size=_SIZE, num_classes=80, mean=(0.0,) * 3, std=(1.0,) * 3)
def yolo_s(*, num_classes: int = 80, in_chans: int = 3, backbone: str | None = None) -> Any:
    """YOLO-style anchor-free detector, small scale (CSP backbone, PAN-FPN, decoupled DFL head)."""
    return _yolo("s", num_classes, in_chans, backbone)


@register_model(family="yolo", task="detect", input_size=_SIZE, num_classes=80, mean=(0.0,) * 3, std=(1.0,) * 3)
def yolo_m(*, num_classes: int = 80, in_chans: int = 3, backbone: str | None = None) -> Any:
    """YOLO-style anchor-free detector, medium scale (CSP backbone, PAN-FPN, decoupled DFL head)."""
    return _yolo("m", num_classes, in_chans, backbone)


# --- torchvision's detectors, behind the same contract (models/tv_detection.py) ----------------------


@register_model(family="faster_rcnn", task="detect", input_size=_SIZE, num_classes=80, mean=(0.0,) * 3, std=(1.0,) * 3)
def faster_rcnn_mobilenet_v2_fpn(*, num_classes: int = 80, in_chans: int = 3, pretrained_backbone: bool = True) -> Any:
    """Faster R-CNN (two-stage) with an FPN over MobileNetV2 (ImageNet weights from the offline package)."""
    from cnnlab.models.tv_detection import faster_rcnn_mobilenet_v2_fpn as build

    _rgb_only("faster_rcnn_mobilenet_v2_fpn", in_chans)
    return build(num_classes, pretrained_backbone)


@register_model(family="retinanet", task="detect", input_size=_SIZE, num_classes=80, mean=(0.0,) * 3, std=(1.0,) * 3)
def retinanet_mobilenet_v2_fpn(*, num_classes: int = 80, in_chans: int = 3, pretrained_backbone: bool = True) -> Any:
    """RetinaNet (one-stage, focal loss) with an FPN over MobileNetV2 (offline ImageNet weights)."""
    from cnnlab.models.tv_detection import retinanet_mobilenet_v2_fpn as build

    _rgb_only("retinanet_mobilenet_v2_fpn", in_chans)
    return build(num_classes, pretrained_backbone)


def _torchvision(name: str, family: str, description: str) -> None:
    def builder(*, num_classes: int = 80, in_chans: int = 3, pretrained_backbone: bool = False) -> Any:
        from cnnlab.models.tv_detection import torchvision_builder

        _rgb_only(name, in_chans)
        return torchvision_builder(name, num_classes, pretrained_backbone)

    builder.__doc__ = description
    register_model(
        family=family, task="detect", input_size=_SIZE, num_classes=80, mean=(0.0,) * 3, std=(1.0,) * 3, name=name
    )(builder)


def _rgb_only(name: str, in_chans: int) -> None:
    if in_chans != 3:
        from cnnlab.errors import ConfigError

        raise ConfigError(f"{name} takes RGB images (3 channels), the data has {in_chans}; use yolo_n for other inputs")


_torchvision("ssdlite320_mobilenet_v3_large", "ssdlite", "SSDlite (one-stage, depthwise heads) over MobileNetV3-Large.")
_torchvision("ssd300_vgg16", "ssd", "SSD300 (one-stage, multi-scale default boxes) over VGG-16.")
_torchvision("fasterrcnn_resnet50_fpn", "faster_rcnn", "Faster R-CNN (two-stage) with an FPN over ResNet-50.")
_torchvision("retinanet_resnet50_fpn", "retinanet", "RetinaNet (one-stage, focal loss) with an FPN over ResNet-50.")
_torchvision("fcos_resnet50_fpn", "fcos", "FCOS (one-stage, anchor-free) with an FPN over ResNet-50.")
