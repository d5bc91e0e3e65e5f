"""Datasets: reading them from anywhere, surviving bad files, and splitting them reproducibly.

    bundle = open_dataset("builtin:fashion-mnist")      # or a folder, or a .csv
    bundle.describe()                                   # JSON-ready summary, skips included
    train = bundle.splits["train"].with_transform(t)    # a torch Dataset of (uint8 image, int label)

Modules: ``sources`` (format detection), ``builtin`` / ``fashion_mnist`` / ``idx`` (built-in sets),
``folder`` and ``table`` (image folders and CSVs) feeding ``filesets`` (probe, filter, split),
``images`` (robust decoding), ``split`` (the Dataset views), ``stratify`` (split policy),
``skips`` (what was left out), ``bundle`` (the result).
"""

from cnnlab.data.bundle import DatasetBundle
from cnnlab.data.images import DEFAULT_MAX_PIXELS, BadImageError, ImageInfo, load_image, probe_image
from cnnlab.data.skips import SkipReport
from cnnlab.data.sources import open_dataset
from cnnlab.data.split import ClassificationSplit, FileSplit, InMemorySplit
from cnnlab.data.stratify import stratified_split

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "BadImageError",
    "ClassificationSplit",
    "DatasetBundle",
    "FileSplit",
    "ImageInfo",
    "InMemorySplit",
    "SkipReport",
    "load_image",
    "open_dataset",
    "probe_image",
    "stratified_split",
]
