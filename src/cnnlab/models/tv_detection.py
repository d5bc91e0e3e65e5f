"""torchvision's detectors (Faster R-CNN, RetinaNet, FCOS, SSD, SSDlite) behind cnnlab's detector contract.

The contract (tasks/detect.py): in train mode ``model(images)`` returns what the criterion needs, in
eval mode ``[B, A, 4 + C]`` boxes and class scores. torchvision's detectors compute their losses
inside ``forward(images, targets)``, so in train mode the adapter hands the images through and its
criterion runs the detector with the targets (same autocast, same backward; not for
DistributedDataParallel, which needs the forward to touch the parameters). In eval mode their own
post-processing (score threshold, NMS, top detections) runs and the kept boxes are packed into the
contract's tensor: one row per box, its score in its class's column, zeros elsewhere, so the shared
NMS that follows keeps them unchanged.

Their own transform would resize to 800 px and normalise with ImageNet statistics; cnnlab's letterbox
has already sized the input, so the adapter sets the transform to the input's size (no resize) and
keeps the ImageNet normalisation that pretrained backbones expect (the card's mean 0, std 1 leave
inputs in [0, 1]).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CheckpointError, ConfigError

MAX_DET = 100


class TorchvisionDetector(nn.Module):
    # Their forward takes a list of images; a trace unrolls it, so exported graphs take one image
    # per run (the runtimes' predictors feed larger batches image by image).
    export_batch = 1
    # Their raw output is already the kept boxes in score order: runtimes are compared on the boxes
    # they draw (export parity), not row by row.
    unordered_outputs = True

    def __init__(self, detector: nn.Module, num_classes: int, max_det: int = MAX_DET, min_input_side: int = 32) -> None:
        super().__init__()
        self.detector = detector
        self.num_classes = num_classes
        self.max_det = max_det
        self.default_input_size = (3, 320, 320)
        # The smallest input its layers accept (SSD300's extra layers shrink a 268 px input to 1x1).
        self.min_input_side = min_input_side

    def _fit_transform(self, images: torch.Tensor) -> None:
        side_h, side_w = images.shape[-2:]
        transform = self.detector.transform
        if getattr(transform, "fixed_size", None) is not None:  # SSD resizes to a fixed square
            transform.fixed_size = (int(side_h), int(side_w))
        transform.min_size = (int(min(side_h, side_w)),)
        transform.max_size = int(max(side_h, side_w))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.training:
            return images  # the criterion runs the detector with the targets
        self._fit_transform(images)
        return torch.stack([self._pack(image) for image in self.detector(list(images))])

    def _pack(self, found: dict[str, torch.Tensor]) -> torch.Tensor:
        """One image's kept boxes as ``[max_det, 4 + C]`` rows, zero-padded. Written with tensor ops
        only (no Python counts), so a traced export keeps the number of boxes data-dependent."""
        boxes, scores = found["boxes"][: self.max_det], found["scores"][: self.max_det]
        labels = found["labels"][: self.max_det]
        # Label 0 is background (cnnlab's classes start at 1). RetinaNet and FCOS score it like any
        # class; a box they label 0 keeps a zero score, which the shared NMS drops.
        scores = scores * (labels > 0).to(scores.dtype)
        columns = F.one_hot((labels - 1).clamp(min=0), self.num_classes).to(scores.dtype) * scores[:, None]
        rows = torch.cat([boxes, columns], dim=1)
        return torch.cat([rows, rows.new_zeros(self.max_det, rows.shape[1])])[: self.max_det]

    def loss_fn(self) -> Any:
        def criterion(images: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> tuple[torch.Tensor, dict]:
            self._fit_transform(images)
            shifted = [{"boxes": t["boxes"].float(), "labels": t["labels"] + 1} for t in targets]
            losses = self.detector(list(images), shifted)
            return sum(losses.values()), {k: v.detach() for k, v in losses.items()}

        return criterion


def _anchor_sizes(levels: int, smallest: int = 16) -> tuple[tuple[int, ...], ...]:
    # Objects in a 160-320 px letterboxed input are 8-200 px: torchvision's 32-512 anchors (for 800 px
    # COCO images) would leave the small ones without a match.
    return tuple((smallest * 2**i, int(smallest * 2**i * 1.41)) for i in range(levels))


# MobileNetV2 stages whose outputs feed the FPN: strides 8 and 16 and the last 1280-channel map at 32
# (torchvision's default, the last two stages, returns two stride-32 maps: a 160 px input gave the
# detectors 5x5 grids for 13-56 px objects, and RetinaNet barely learned). With the max-pool level
# above them: strides 8-64, anchors 16-181 px.
_MOBILENET_V2_FPN_STAGES = [2, 3, 5]

# Proposals and RoI samples for 160-320 px inputs holding a handful of objects, not torchvision's for
# 800 px COCO images (2000 proposals, 512 RoIs per image): the two-stage head's cost is per RoI. At
# test, 150 proposals as torchvision's own 320 px variant (fasterrcnn_mobilenet_v3_large_320_fpn).
_SMALL_IMAGE_RCNN = dict(
    rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500,
    rpn_pre_nms_top_n_test=150, rpn_post_nms_top_n_test=150,
    box_batch_size_per_image=128,
)  # fmt: skip


def _mobilenet_v2_fpn(pretrained: bool) -> nn.Module:
    from torchvision.models.detection.backbone_utils import mobilenet_backbone
    from torchvision.ops.misc import FrozenBatchNorm2d

    norm = FrozenBatchNorm2d if pretrained else nn.BatchNorm2d
    backbone = mobilenet_backbone(
        backbone_name="mobilenet_v2", weights=None, fpn=True, norm_layer=norm,
        trainable_layers=3 if pretrained else 6, returned_layers=_MOBILENET_V2_FPN_STAGES,
    )  # fmt: skip
    if pretrained:
        _load_offline_mobilenet_v2(backbone.body)
    return backbone


def _load_offline_mobilenet_v2(body: nn.Module) -> None:
    """ImageNet weights from the offline package into the FPN body (the classifier's ``features``)."""
    from cnnlab.registry import create_model

    try:
        classifier = create_model("mobilenet_v2", num_classes=1000, pretrained=True)
    except CheckpointError as exc:
        raise CheckpointError(f"pretrained backbone for a mobilenet_v2 detector: {exc}") from None
    features = {k.removeprefix("features."): v for k, v in classifier.state_dict().items() if k.startswith("features.")}
    missing, unexpected = body.load_state_dict(features, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise CheckpointError(
            f"mobilenet_v2 weights do not fit the detector's backbone: {missing[:3]} {unexpected[:3]}"
        )


def faster_rcnn_mobilenet_v2_fpn(num_classes: int, pretrained_backbone: bool) -> TorchvisionDetector:
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    backbone = _mobilenet_v2_fpn(pretrained_backbone)
    levels = len(backbone.body.return_layers) + 1  # + the max-pool level
    anchors = AnchorGenerator(_anchor_sizes(levels), ((0.5, 1.0, 2.0),) * levels)
    detector = FasterRCNN(
        backbone, num_classes=num_classes + 1, rpn_anchor_generator=anchors, min_size=320, max_size=320,
        **_SMALL_IMAGE_RCNN,
    )  # fmt: skip
    return TorchvisionDetector(detector, num_classes)


def retinanet_mobilenet_v2_fpn(num_classes: int, pretrained_backbone: bool) -> TorchvisionDetector:
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    backbone = _mobilenet_v2_fpn(pretrained_backbone)
    levels = len(backbone.body.return_layers) + 1
    anchors = AnchorGenerator(_anchor_sizes(levels), ((0.5, 1.0, 2.0),) * levels)
    detector = RetinaNet(backbone, num_classes=num_classes + 1, anchor_generator=anchors, min_size=320, max_size=320)
    return TorchvisionDetector(detector, num_classes)


# Inputs below these fail inside a convolution (found by bisection on the backbone).
_MIN_INPUT_SIDE = {"ssd300_vgg16": 268}


def torchvision_builder(name: str, num_classes: int, pretrained_backbone: bool) -> TorchvisionDetector:
    """torchvision's own builders (ResNet-50/VGG-16 backbones, SSDlite's MobileNetV3): ImageNet backbone
    weights come from torchvision's hub when asked (not available offline)."""
    from torchvision.models import detection

    builder = getattr(detection, name, None)
    if builder is None:
        raise ConfigError(f"torchvision has no detector {name!r}")
    try:
        detector = builder(weights=None, weights_backbone="DEFAULT" if pretrained_backbone else None,
                           num_classes=num_classes + 1)  # fmt: skip
    except (OSError, RuntimeError) as exc:
        raise CheckpointError(
            f"{name}: could not download the ImageNet backbone from torchvision's hub "
            f"({str(exc).splitlines()[0][:160]}); use pretrained_backbone=False or a machine with internet"
        ) from None
    return TorchvisionDetector(detector, num_classes, min_input_side=_MIN_INPUT_SIDE.get(name, 32))
