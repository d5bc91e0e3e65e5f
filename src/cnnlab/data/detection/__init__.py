"""Object-detection datasets: COCO, YOLO and VOC readers, a converter, and a procedural shapes set.

    bundle = open_detection("data/coco-like")        # DatasetBundle(task="detect"), splits of DetectionSplit
    image, target = bundle.splits["train"][0]        # target: boxes (XYXY pixels), labels, image_id
    convert("data/voc", "data/as-yolo", "yolo")      # any format to any other
    make_shapes("data/shapes", fmt="coco")           # 800/100/100 images of 160 px with exact boxes

Modules: ``records`` (BoxRecord, DetectionSplit), ``validate`` (box cleaning), ``coco`` / ``yolo`` /
``voc`` (readers), ``sources`` (format detection), ``open`` (probe, split, bundle), ``writers``
(writing and converting), ``shapes`` (the procedural set).
"""

from cnnlab.data.detection.open import open_detection
from cnnlab.data.detection.records import BoxRecord, DetectionSource, DetectionSplit
from cnnlab.data.detection.shapes import make_shapes, shapes_records
from cnnlab.data.detection.sources import detect_format, read_source
from cnnlab.data.detection.writers import convert, write_dataset

__all__ = [
    "BoxRecord",
    "DetectionSource",
    "DetectionSplit",
    "convert",
    "detect_format",
    "make_shapes",
    "open_detection",
    "read_source",
    "shapes_records",
    "write_dataset",
]
