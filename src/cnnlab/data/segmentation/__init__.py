"""Semantic-segmentation datasets: 2D mask folders, 3D volumes, COCO polygons/RLE, and procedural shapes.

    bundle = open_segmentation("data/cells")          # DatasetBundle(task="segment"), splits of SegmentationSplit
    image, target = bundle.splits["train"][0]         # target: mask (class ids, 255 ignored), spacing, index
    make_segment_shapes("data/shapes3d", dims=3)      # 96/16/16 volumes of 48^3 voxels with exact labels

Modules: ``records`` (MaskRecord, SegmentationSplit, the contract), ``masks`` (image + mask folders),
``volumes`` (NIfTI / NumPy volumes), ``coco_masks`` (COCO segmentations painted into masks), ``open``
(format detection, split, bundle), ``shapes`` (the procedural sets). Transforms and collation live in
``cnnlab.data.mask_transforms``.
"""

from cnnlab.data.segmentation.open import SEGMENTATION_FORMATS, detect_segmentation_format, open_segmentation
from cnnlab.data.segmentation.records import IGNORE_INDEX, MaskRecord, SegmentationSplit
from cnnlab.data.segmentation.shapes import CLASSES_2D, CLASSES_3D, make_segment_shapes, shapes_sample
from cnnlab.data.segmentation.volumes import load_volume

__all__ = [
    "CLASSES_2D",
    "CLASSES_3D",
    "IGNORE_INDEX",
    "SEGMENTATION_FORMATS",
    "MaskRecord",
    "SegmentationSplit",
    "detect_segmentation_format",
    "load_volume",
    "make_segment_shapes",
    "open_segmentation",
    "shapes_sample",
]
