"""``open_dataset``: from what the user typed (``--data SRC``) to a dataset bundle.

The format is told by the source itself, never by a flag:

    builtin:NAME        a built-in set (``builtin.BUILTINS``)
    DIR                 an image folder (``folder``)
    FILE.csv            a CSV listing path,label[,split] (``table``)

    DIR, FILE.json/.yaml  a detection set laid out as COCO, YOLO or VOC (``detection.sources``)
    DIR                 a segmentation set: images/ + masks/, or volumes images/ + labels/
                        (``segmentation``); a COCO .json with polygons when the task is "segment"
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from cnnlab.data.builtin import BUILTINS, PREFIX, open_builtin
from cnnlab.data.bundle import DatasetBundle
from cnnlab.data.folder import read_folder
from cnnlab.data.images import DEFAULT_MAX_PIXELS
from cnnlab.data.stratify import SplitOptions
from cnnlab.data.table import read_csv
from cnnlab.errors import ConfigError, DataError

ACCEPTED = (
    f"{', '.join(PREFIX + name for name in BUILTINS)}; a folder with one sub-folder of images per class "
    "(optionally under train/ val/ test/); a .csv file with columns path,label[,split]; or a detection set "
    "(COCO .json, YOLO data.yaml, VOC Annotations/); or a segmentation set (images/ + masks/ PNGs, or volumes "
    "images/ + labels/ as .nii.gz/.npy/.npz)"
)


def open_dataset(
    source: str | os.PathLike[str],
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    skip_log: str | os.PathLike[str] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    task: str | None = None,
) -> DatasetBundle:
    """Open a dataset, check every file once, and divide it into train, val and test.

    Args:
        source: ``builtin:NAME``, an image folder, or a ``.csv`` file.
        seed: seeds every split that cnnlab carves; the same seed gives the same splits.
        val_fraction: share of the data (or of train, when the source has a train split) for val.
        test_fraction: share for test when the source has no test split of its own.
        skip_log: JSON-lines file that receives files that go bad after opening (see ``FileSplit``).
        max_pixels: images with more pixels are skipped as "too large" without being decoded.
        task: decides what an ambiguous source is: a COCO .json is boxes for "detect" (the default)
            and semantic masks from its polygons for "segment".

    Raises:
        DataError: the source does not exist, is of an unknown format, or has nothing usable.
        ConfigError: a fraction or ``max_pixels`` is out of range.
    """
    options = _options(seed, val_fraction, test_fraction)
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ConfigError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    name = os.fspath(source)
    if isinstance(source, str) and source.startswith(PREFIX):
        return open_builtin(source, options)
    path = Path(source)
    log = os.fspath(skip_log) if skip_log is not None else None
    if not path.exists():
        raise DataError(f"dataset {name} does not exist; give an existing folder or .csv file, or one of {ACCEPTED}")
    if path.is_dir() or path.suffix.lower() == ".json":
        from cnnlab.data.segmentation import detect_segmentation_format, open_segmentation

        fmt = detect_segmentation_format(path)
        if fmt is not None and (fmt != "coco" or task == "segment"):
            return open_segmentation(path, name, options, max_pixels, fmt=fmt, skip_log=log)
    if path.is_dir() or path.suffix.lower() in (".json", ".yaml", ".yml"):
        from cnnlab.data.detection import detect_format, open_detection

        fmt = detect_format(path)
        if fmt is not None:
            return open_detection(path, name, options, max_pixels, fmt=fmt, skip_log=log)
    if path.is_dir():
        return read_folder(path, name, options=options, max_pixels=max_pixels, skip_log=log)
    if path.suffix.lower() == ".csv":
        return read_csv(path, name, options=options, max_pixels=max_pixels, skip_log=log)
    raise DataError(f"cannot tell the format of {name}; accepted: {ACCEPTED}")


def _options(seed: int, val_fraction: float, test_fraction: float) -> SplitOptions:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    for field, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{field} must be a number between 0 and 1, got {value!r}")
        if not 0 <= value < 1:
            raise ConfigError(f"{field} must be at least 0 and below 1, got {value}")
    if val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction + test_fraction must leave something to train on, got {val_fraction} + {test_fraction}"
        )
    return SplitOptions(seed=seed, val_fraction=float(val_fraction), test_fraction=float(test_fraction))
