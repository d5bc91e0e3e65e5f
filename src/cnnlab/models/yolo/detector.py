"""``YoloDetector``: backbone -> PAN-FPN neck -> decoupled head, and ``build_yolo`` for the n/s/m scales.

    training mode:  forward(x) -> list of raw [B, 4 * reg_max + C, H_i, W_i], one per stride 8/16/32
                    (what ``DetectionLoss`` takes: ``loss_fn()(outputs, targets)``)
    eval mode:      forward(x) -> [B, A, 4 + C]: xyxy pixels clipped to the input, sigmoid scores;
                    A = sum over levels of (H / s) * (W / s). This is the exported graph's output.
    predict(x)      -> eval forward + NMS: one {"boxes", "scores", "labels"} dict per image.

Inputs must have height and width divisible by 32, the coarsest stride, so each level is an exact
grid and the neck's upsampled maps line up with the backbone's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.yolo.backbone import FEATURE_STRIDES, CspBackbone, RegistryBackbone, get_scale
from cnnlab.models.yolo.head import DecoupledHead
from cnnlab.models.yolo.loss import DetectionLoss
from cnnlab.models.yolo.neck import PanFpn
from cnnlab.models.yolo.postprocess import EVAL_NMS, PREDICT_NMS, decode, nms

__all__ = ["EVAL_NMS", "PREDICT_NMS", "YoloDetector", "build_yolo"]


def _size_hint(size: int, stride: int) -> tuple[int, int]:
    """The multiples of ``stride`` just below and just above ``size`` (never below ``stride``)."""
    lower = max(stride, size // stride * stride)
    return lower, (lower + stride if lower < size else lower)


class YoloDetector(nn.Module):
    """One-stage, anchor-free detector composed of a backbone, a neck and a head.

    Args:
        backbone: returns maps at strides 8, 16, 32 (see ``backbone.py`` for the contract).
        neck: fuses them, same strides.
        head: raw per-level outputs with ``num_classes`` and ``reg_max`` attributes.
        strides: stride of each level.
        default_input_size: ``(C, H, W)`` the model is meant to run at (used by tools, not enforced).
    """

    exportable = True  # decode is pure tensor arithmetic; NMS stays outside the graph

    def __init__(
        self,
        backbone: nn.Module,
        neck: nn.Module,
        head: DecoupledHead,
        *,
        strides: Sequence[int] = FEATURE_STRIDES,
        default_input_size: tuple[int, int, int] = (3, 640, 640),
    ) -> None:
        super().__init__()
        self.backbone, self.neck, self.head = backbone, neck, head
        self.num_classes, self.reg_max = head.num_classes, head.reg_max
        self.strides = tuple(strides)
        self.default_input_size = tuple(default_input_size)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ConfigError when the spatial size is not a multiple of the coarsest stride."""
        stride = max(self.strides)
        if x.dim() != 4:
            raise ConfigError(f"the detector takes a batch [B, C, H, W], got a tensor of shape {tuple(x.shape)}")
        height, width = int(x.shape[-2]), int(x.shape[-1])
        if height % stride or width % stride:
            (h_lo, h_hi), (w_lo, w_hi) = _size_hint(height, stride), _size_hint(width, stride)
            sizes = f"{h_lo}x{w_lo}" if (h_lo, w_lo) == (h_hi, w_hi) else f"{h_lo}x{w_lo} or {h_hi}x{w_hi}"
            raise ConfigError(
                f"input size {height}x{width} is not divisible by {stride}, the detector's coarsest stride; "
                f"resize or letterbox to {sizes}"
            )

    def forward_raw(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-level head outputs, whatever the mode (for a validation loss, say)."""
        self.check_input(x)
        features = self.backbone(x)
        for feature, stride in zip(features, self.strides, strict=True):
            expected = (x.shape[-2] // stride, x.shape[-1] // stride)
            if tuple(feature.shape[-2:]) != expected:
                raise ConfigError(
                    f"backbone {type(self.backbone).__name__} gave a {tuple(feature.shape[-2:])} map where stride "
                    f"{stride} needs {expected}; its declared strides do not match its output"
                )
        return self.head(self.neck(features))

    def decode(self, outputs: Sequence[torch.Tensor], image_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Raw outputs to the ``[B, A, 4 + C]`` tensor of eval mode."""
        return decode(outputs, strides=self.strides, reg_max=self.reg_max, image_size=image_size)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor] | torch.Tensor:
        outputs = self.forward_raw(x)
        if self.training:
            return outputs
        return self.decode(outputs, image_size=(x.shape[-2], x.shape[-1]))

    def loss_fn(self, *, box_gain: float = 7.5, cls_gain: float = 0.5, dfl_gain: float = 1.5) -> DetectionLoss:
        """The matching loss: ``total, parts = model.loss_fn()(model(x), targets)`` in training mode."""
        return DetectionLoss(
            self.num_classes,
            strides=self.strides,
            reg_max=self.reg_max,
            box_gain=box_gain,
            cls_gain=cls_gain,
            dfl_gain=dfl_gain,
        )

    @torch.no_grad()
    def predict(
        self,
        x: torch.Tensor,
        conf: float = PREDICT_NMS["conf"],
        iou: float = PREDICT_NMS["iou"],
        max_det: int = 300,
    ) -> list[dict[str, torch.Tensor]]:
        """Detections per image after NMS, in input pixels (undo the letterbox for original pixels)."""
        was_training = self.training
        self.eval()
        try:
            decoded = self(x)
        finally:
            self.train(was_training)
        return nms(decoded, conf=conf, iou=iou, max_det=max_det)


def build_yolo(
    scale: str,
    *,
    num_classes: int,
    in_chans: int = 3,
    backbone: str | None = None,
    pretrained_backbone: bool | str = False,
    reg_max: int = 16,
) -> YoloDetector:
    """A YOLO-style detector at scale ``n``, ``s`` or ``m``.

    Args:
        scale: width/depth multipliers: n (0.25, 0.33), s (0.5, 0.33), m (0.75, 0.67).
        num_classes: number of object classes (no background class).
        in_chans: input channels.
        backbone: a registry name (``mobilenetv2_100``, ``resnet18``...) to use instead of cnnlab's
            own CSP backbone; its stride-8/16/32 maps feed the neck.
        pretrained_backbone: passed to ``create_model`` for a registry backbone.
        reg_max: DFL bins per box side; the longest predictable distance is ``reg_max - 1`` strides.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    config = get_scale(scale)
    widths = tuple(config.channels(c) for c in (256, 512, 1024))
    if backbone is None:
        body: nn.Module = CspBackbone(config, in_chans=in_chans)
    else:
        body = RegistryBackbone(backbone, in_chans=in_chans, pretrained=pretrained_backbone)
    neck = PanFpn(body.feature_info.channels(), widths, depth=config.blocks(3))
    head = DecoupledHead(widths, num_classes, reg_max=reg_max)
    return YoloDetector(body, neck, head, default_input_size=(in_chans, 640, 640))
