"""cnnlab's own detectors in the registry: the YOLO-style one-stage, anchor-free family at three scales.

`cnnlab models list --task detect` shows them; `cnnlab train --task detect --model yolo_n` trains one.
A registry backbone replaces the built-in CSP one with ``--model-option backbone=NAME``.
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
