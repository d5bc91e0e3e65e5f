"""Image folders: one sub-folder per class, optionally under train/ val/ test/ folders.

    root/cat/1.jpg, root/dog/2.png                 classes cat, dog; split 70/10/20 here
    root/train/cat/..., root/test/cat/...          the dataset's splits; val is carved from train
    root/train/..., root/val (or valid)/..., root/test/...   used as they are

Class folders are searched recursively. Image files are recognised by extension (case-insensitive:
jpg, jpeg, png, bmp, gif, tif, tiff, webp); hidden files and folders (".name") are ignored, other
files too, and are mentioned only if nothing usable is found. An image lying outside any class folder
is skipped as "no class". With split folders the classes are the union over all of them, and a class
is dropped only when no split has a usable image of it (a class may be absent from val or test).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from cnnlab.data.bundle import DatasetBundle
from cnnlab.data.filesets import LabelledFile, assemble
from cnnlab.data.images import IMAGE_EXTENSIONS, is_image_name
from cnnlab.data.skips import SkipReport
from cnnlab.data.stratify import SPLIT_ALIASES, SplitOptions
from cnnlab.errors import DataError


def read_folder(
    root: Path, name: str, *, options: SplitOptions, max_pixels: int, skip_log: str | None
) -> DatasetBundle:
    """Open an image-folder dataset (see the module docstring for the layouts)."""
    root = Path(os.path.abspath(root))
    skipped = SkipReport()
    ignored: Counter[str] = Counter()
    splits = _split_folders(root)
    files: list[LabelledFile] = []
    places: dict[str, str] = {}
    tops: list[tuple[str | None, Path]] = list(splits.items()) if splits else [(None, root)]
    for split, top in tops:
        for entry in _visible(top):
            if entry.is_dir():
                places.setdefault(entry.name, str(entry))
                files.extend(LabelledFile(p, entry.name, split) for p in _walk_images(entry, ignored))
            elif is_image_name(entry.name):
                skipped.add(entry, "no class", f"an image directly in {top}, outside any class folder")
            else:
                ignored[entry.suffix.lower() or entry.name] += 1
    if not places:
        raise DataError(
            f"{name}: found no class folders in {root}; an image folder dataset needs one sub-folder per "
            "class (root/cat/*.jpg, root/dog/*.jpg), optionally under train/ val/ test/"
        )
    return assemble(
        name,
        files,
        sorted(places),
        class_places=places,
        declared_splits=list(splits) if splits else None,
        options=options,
        skipped=skipped,
        max_pixels=max_pixels,
        skip_log=skip_log,
        found_note=_ignored_note(ignored),
    )


def _split_folders(root: Path) -> dict[str, Path] | None:
    """The train/val/test folders when ``root`` uses that layout (a train/ holding folders), else None."""
    found: dict[str, Path] = {}
    for entry in _visible(root):
        split = SPLIT_ALIASES.get(entry.name.lower())
        if split is None or not entry.is_dir():
            continue
        if split in found:
            raise DataError(f"{root} has both {found[split].name}/ and {entry.name}/ as the {split} split; keep one")
        found[split] = entry
    train = found.get("train")
    if train is None or not any(e.is_dir() for e in _visible(train)):
        return None
    return found


def _visible(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise DataError(f"cannot list {folder}: {exc.strerror or exc}") from None


def _walk_images(folder: Path, ignored: Counter[str]) -> list[str]:
    """Image files under ``folder``, sorted, following links but never the same folder twice."""
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    for here, dirs, names in os.walk(folder, followlinks=True):  # unlistable folders are passed over
        try:
            stat = os.stat(here)
        except OSError:
            dirs.clear()
            continue
        if (stat.st_dev, stat.st_ino) in seen:  # a link loop
            dirs.clear()
            continue
        seen.add((stat.st_dev, stat.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(names):
            if is_image_name(file):
                found.append(os.path.join(here, file))
            elif not file.startswith("."):
                ignored[os.path.splitext(file)[1].lower() or file] += 1
    return found


def _ignored_note(ignored: Counter[str]) -> str:
    if not ignored:
        return ""
    kinds = ", ".join(f"{count} {kind}" for kind, count in ignored.most_common(5))
    return (
        f"; also ignored {sum(ignored.values())} files that are not images by name ({kinds}); "
        f"accepted extensions: {' '.join(IMAGE_EXTENSIONS)}"
    )
