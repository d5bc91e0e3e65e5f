"""``open_segmentation``: mask folders, volume folders or COCO segmentations as a ``DatasetBundle``
with ``task="segment"``; ``detect_segmentation_format`` tells the three apart.

    DIR with images/ (or train/images/) of .nii, .nii.gz, .npy or .npz files     volumes
    DIR with images/ and masks/ (or train/images/ and train/masks/)              masks
    FILE.json, or a COCO folder (as for detection), whose annotations carry "segmentation"
                                                                                 coco

A COCO file is also a detection dataset: this module says "coco" only when its annotations carry
segmentations, and the caller decides by the task.

Split policy, as for detection (``dense_splits``): the dataset's own splits are kept; val and test
that it lacks are carved from train, seeded, stratified by the rarest class each item contains
(all-background items form a group of their own).
"""

from __future__ import annotations

import os
from pathlib import Path

from cnnlab.data.bundle import DatasetBundle
from cnnlab.data.dense_splits import carve, gather
from cnnlab.data.detection.coco import find_coco_files
from cnnlab.data.images import DEFAULT_MAX_PIXELS, is_image_name
from cnnlab.data.segmentation.coco_masks import has_segmentation, read_coco_masks
from cnnlab.data.segmentation.masks import read_mask_folders, split_tops
from cnnlab.data.segmentation.records import SegmentationSplit
from cnnlab.data.segmentation.volumes import read_volume_folders, volume_stem
from cnnlab.data.skips import SkipReport
from cnnlab.data.stratify import SPLITS, SplitOptions
from cnnlab.errors import ConfigError, DataError

SEGMENTATION_FORMATS = ("masks", "volumes", "coco")
_READERS = {"masks": read_mask_folders, "volumes": read_volume_folders, "coco": read_coco_masks}
LAYOUTS = (
    "mask folders (images/ + masks/ of class-id PNGs, optionally under train/ val/ test/), volume folders "
    "(images/ + labels/ of .nii.gz, .npy or .npz), or a COCO .json with 'segmentation' polygons or RLE"
)


def detect_segmentation_format(path: str | os.PathLike[str]) -> str | None:
    """ "masks", "volumes" or "coco" when ``path`` is laid out as such a dataset, else None (never raises)."""
    path = Path(path)
    try:
        if path.is_file():
            return "coco" if path.suffix.lower() == ".json" and has_segmentation(path) else None
        if not path.is_dir():
            return None
        for top in split_tops(path).values():
            names = [p.name for p in (top / "images").iterdir()]
            if any(volume_stem(n) for n in names):
                return "volumes"
            if (top / "masks").is_dir() and any(is_image_name(n) for n in names):
                return "masks"
        files = find_coco_files(path)
        return "coco" if any(has_segmentation(file) for file, _ in files.values()) else None
    except (OSError, DataError):
        return None


def open_segmentation(
    path: str | os.PathLike[str],
    name: str | None = None,
    options: SplitOptions | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    fmt: str | None = None,
    skip_log: str | os.PathLike[str] | None = None,
) -> DatasetBundle:
    """Read, check and split a segmentation dataset.

    Args:
        path: a dataset folder or a COCO .json file (see ``detect_segmentation_format``).
        name: the dataset's name for messages and ``describe()`` (default: ``path``).
        options: seed and fractions for the splits that are carved (default ``SplitOptions()``).
        max_pixels: 2D images with more pixels are skipped as "too large" without being decoded.
        fmt: "masks", "volumes" or "coco" to skip format detection.
        skip_log: JSON-lines file that receives files that go bad after opening.

    Raises:
        DataError: not a segmentation dataset, malformed class or annotation files, no usable item,
            no foreground pixel at all, or a declared train split without a usable item.
        ConfigError: ``fmt`` is not one of ``SEGMENTATION_FORMATS``; nibabel is missing for NIfTI files.
    """
    name = name or os.fspath(path)
    options = options or SplitOptions()
    if fmt is not None and fmt not in SEGMENTATION_FORMATS:
        raise ConfigError(f"segmentation format must be one of {', '.join(SEGMENTATION_FORMATS)}, not {fmt!r}")
    if not Path(path).exists():
        raise DataError(f"{name} does not exist; give a segmentation dataset: {LAYOUTS}")
    fmt = fmt or detect_segmentation_format(path)
    if fmt is None:
        raise DataError(f"{name} is not laid out as a segmentation dataset; expected {LAYOUTS}")
    skipped = SkipReport()
    source = _READERS[fmt](Path(path), skipped, max_pixels=max_pixels)
    records, declared = gather(source.splits)
    read_as = f"read as {fmt}"
    if not records:
        raise DataError(
            f"{name}: {read_as}, 0 usable items (skipped: {skipped.summary()}); expected {LAYOUTS}, "
            "with every image paired with a mask of its size"
        )
    if all(r.empty for r in records):
        raise DataError(
            f"{name}: {read_as}, {len(records)} usable items but not one foreground pixel (skipped: "
            f"{skipped.summary()}); check that masks hold class ids (1, 2, ...), not 0 everywhere"
        )
    refuse = f"{name}: {read_as} (skipped: {skipped.summary()})"
    positions, policy = carve(records, declared, source.splits, options, unit="items", refuse=refuse)
    if source.reader.spatial_dims == 2:
        channels = 1 if all(r.grey for r in records) else 3
    else:
        channels = records[0].channels  # the reader kept one channel count
    sizes = {r.size for r in records}
    everything = SegmentationSplit(
        records, source.class_names, channels, reader=source.reader, max_pixels=max_pixels, skip_log=skip_log
    )
    return DatasetBundle(
        name=name,
        task="segment",
        class_names=list(source.class_names),
        channels=channels,
        native_size=sizes.pop() if len(sizes) == 1 else None,
        splits={split: everything.subset(positions[split]) for split in SPLITS},
        split_policy=f"{policy} ({fmt})",
        skipped=skipped,
    )
