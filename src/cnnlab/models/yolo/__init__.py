"""cnnlab's one-stage, anchor-free YOLO-style detector, written from the papers (YOLOX, YOLOv6, TOOD, GFL).

model = build_yolo("n", num_classes=3)
total, parts = model.loss_fn()(model(images), targets)   # training mode
detections = model.predict(images)                        # list of {"boxes", "scores", "labels"}
"""

from cnnlab.models.yolo.anchors import bbox2dist, dfl_expectation, dist2bbox, make_anchors
from cnnlab.models.yolo.assigner import TaskAlignedAssigner
from cnnlab.models.yolo.backbone import SCALES, CspBackbone, CspBlock, RegistryBackbone, YoloScale
from cnnlab.models.yolo.detector import YoloDetector, build_yolo
from cnnlab.models.yolo.head import DecoupledHead
from cnnlab.models.yolo.loss import DetectionLoss, complete_iou, distribution_focal_loss
from cnnlab.models.yolo.neck import PanFpn
from cnnlab.models.yolo.postprocess import EVAL_NMS, PREDICT_NMS, decode, nms

__all__ = [
    "EVAL_NMS",
    "PREDICT_NMS",
    "SCALES",
    "CspBackbone",
    "CspBlock",
    "DecoupledHead",
    "DetectionLoss",
    "PanFpn",
    "RegistryBackbone",
    "TaskAlignedAssigner",
    "YoloDetector",
    "YoloScale",
    "bbox2dist",
    "build_yolo",
    "complete_iou",
    "decode",
    "dfl_expectation",
    "dist2bbox",
    "distribution_focal_loss",
    "make_anchors",
    "nms",
]
