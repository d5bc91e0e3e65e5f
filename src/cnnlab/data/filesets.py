"""From a list of labelled files (found in a folder tree or listed in a CSV) to a dataset bundle.

Both file readers end here, so probing, dropping empty classes, choosing channels and size, and
splitting behave the same whatever the format:

1. every file is probed (``probe_image``); a bad one is skipped and counted with its reason;
2. a class left without a usable image is dropped and recorded as "empty class";
3. channels are 1 when every usable image is grey, else 3; ``native_size`` is the shared (H, W) or None;
4. splits the source declares are kept; missing val/test are carved from train (stratified, seeded);
   a source that declares none is split 70/10/20 (by the given fractions).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnnlab.data.bundle import DatasetBundle
from cnnlab.data.images import BadImageError, ImageInfo, probe_image
from cnnlab.data.skips import SkipReport
from cnnlab.data.split import FileSplit
from cnnlab.data.stratify import SPLITS, SplitOptions, split_positions
from cnnlab.errors import DataError


@dataclass(frozen=True)
class LabelledFile:
    """One candidate sample, before its file is probed."""

    path: str
    label: str  # class name
    split: str | None = None  # "train", "val" or "test" when the source says so
    where: str = ""  # prefix for skip details, e.g. "labels.csv row 7"


def assemble(
    name: str,
    files: Sequence[LabelledFile],
    class_names: Sequence[str],
    *,
    class_places: dict[str, str],
    declared_splits: Sequence[str] | None,
    options: SplitOptions,
    skipped: SkipReport,
    max_pixels: int,
    skip_log: str | None,
    found_note: str = "",
) -> DatasetBundle:
    """Probe, filter and split ``files`` into a classification bundle.

    Args:
        name: the dataset's name as the user gave it, used in messages.
        files: candidates; their ``label`` must be in ``class_names``.
        class_names: every class the source names, in the order labels should follow.
        class_places: where each class came from (its folder, or the CSV), for "empty class" records.
        declared_splits: the splits the source defines (None when it defines none).
        options: seed and fractions for the splits that are carved.
        skipped: report to add to (it may already hold the reader's own skips).
        max_pixels: decompression-bomb limit.
        skip_log: JSON-lines file for files that go bad after this scan.
        found_note: appended to the error raised when nothing is usable (e.g. ignored file types).

    Raises:
        DataError: no usable image at all, or none in the train split.
    """
    candidates = skipped.total + len(files)  # the reader's skips (rows, stray files) were candidates too
    usable: list[tuple[LabelledFile, ImageInfo]] = []
    for file in files:
        try:
            usable.append((file, probe_image(file.path, max_pixels=max_pixels)))
        except BadImageError as exc:
            skipped.add(file.path, exc.reason, f"{file.where}: {exc.detail}" if file.where else exc.detail)
    file_skips = skipped.summary()  # before "empty class" records, which are not files
    counts = Counter(file.label for file, _ in usable)
    for cls in class_names:
        if counts[cls] == 0:
            listed = sum(1 for f in files if f.label == cls)
            detail = f"class {cls!r}: " + (f"none of its {listed} files is usable" if listed else "no image files")
            skipped.add(class_places.get(cls, name), "empty class", detail)
    if not usable:
        raise DataError(f"{name}: 0 usable images of {candidates} files ({file_skips}){found_note}")
    kept = [cls for cls in class_names if counts[cls] > 0]
    train_files = [f for f, _ in usable if f.split == "train"]
    if declared_splits is not None and not train_files:
        listed = sum(1 for f in files if f.split == "train")
        raise DataError(
            f"{name}: the train split has 0 usable images of {listed} files (skipped overall: {file_skips}); "
            "training needs at least one"
        )

    index = {cls: i for i, cls in enumerate(kept)}
    labels = np.array([index[file.label] for file, _ in usable], dtype=np.int64)
    channels = 1 if all(info.grey for _, info in usable) else 3
    sizes = {info.size for _, info in usable}
    native_size = sizes.pop() if len(sizes) == 1 else None
    everything = FileSplit(
        [file.path for file, _ in usable],
        labels,
        kept,
        channels,
        native_size=native_size,
        max_pixels=max_pixels,
        skip_log=skip_log,
    )
    declared = [file.split for file, _ in usable]
    positions, policy = split_positions(labels, declared, declared_splits, options)
    return DatasetBundle(
        name=name,
        task="classify",
        class_names=kept,
        channels=channels,
        native_size=native_size,
        splits={split: everything.subset(positions[split]) for split in SPLITS},
        split_policy=policy,
        skipped=skipped,
    )
