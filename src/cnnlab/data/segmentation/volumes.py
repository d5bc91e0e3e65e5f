"""Volume folders: 3D images and label volumes paired by file stem (.nii, .nii.gz, .npy, .npz).

    DIR/images/case1.nii.gz   DIR/labels/case1.nii.gz     one dataset, split here
    DIR/train/images/...      DIR/train/labels/...        the dataset's own splits (train, val, test)
    DIR/images/case1.npz                                  self-contained: arrays "image", "label" and
                                                          optionally "spacing" (labels/ not needed)
    DIR/classes.txt           optional, as for mask folders (line i names class i)
    DIR/spacing.json          optional, {"case1": [z, y, x]} in mm, for files that carry none

Axis convention: every volume is laid out ``[D, H, W]`` (images ``[C, D, H, W]``) with spacing
``(z, y, x)`` in the same order. NumPy files are taken as stored (``[D, H, W]`` or ``[C, D, H, W]``).
NIfTI voxel axes (i, j, k[, c]) are reversed to (k, j, i) and the header zooms with them, so a
(512, 512, 90) scan of 0.7 x 0.7 x 2.5 mm becomes ``[90, 512, 512]`` with spacing (2.5, 0.7, 0.7);
the voxel order of the file is kept (no reorientation to RAS), which is the same for an image and
its label when both come from one scanner frame.

Spacing: the file's own (NIfTI zooms, npz "spacing"), else spacing.json, else (1, 1, 1), counted as
"spacing assumed 1 mm". Skipped and counted (reason): "no label", "no image", "duplicate name",
"shape mismatch" (image and label differ), "spacing mismatch" (image and label zooms differ by over
0.1%), "unknown class", "bad label" (non-integer values), "channel mismatch" (a volume with other
channels than most), "not a volume", and files that fail to read ("empty file", "truncated",
"corrupt", ...). Every label is read once here; images only have their header read. ``max_pixels``
does not apply to volumes: a CT scan has more voxels than any photograph has pixels.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.data.images import BadImageError
from cnnlab.data.segmentation.masks import finish_classes, pair_by_stem, read_classes, split_tops, summarise_mask
from cnnlab.data.segmentation.records import MaskRecord, SegmentationSource
from cnnlab.data.skips import SkipReport
from cnnlab.errors import ConfigError, DataError

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".npz", ".npy")
SPACING_FILE = "spacing.json"
SPACING_TOLERANCE = 1e-3  # relative: image and label zooms written by two tools differ in float rounding


class VolumeReader:
    """Loads image volumes as float32 ``[C, D, H, W]`` and label volumes as ``[D, H, W]`` (``ItemReader``)."""

    spatial_dims = 3

    def load_image(self, record: MaskRecord, channels: int, max_pixels: int) -> torch.Tensor:
        volume = load_volume(record.image)
        if volume.shape[0] != channels:
            raise BadImageError(record.image, "size changed", f"now {volume.shape[0]} channels, {channels} when opened")
        return volume

    def load_mask(self, record: MaskRecord) -> np.ndarray:
        array, _ = read_volume(record.mask, "label")
        return _label_layout(array, record.mask)


def load_volume(path: str | os.PathLike[str]) -> torch.Tensor:
    """An image volume file (.nii, .nii.gz, .npy, or .npz with an "image" array) as float32
    ``[C, D, H, W]``, laid out per the axis convention above (for prediction on new files).

    Raises:
        BadImageError: the file is missing, damaged or not a volume.
        ConfigError: a NIfTI file and nibabel is not installed.
    """
    array, _ = read_volume(path, "image")
    array = np.require(_image_layout(array, Path(path)), dtype=np.float32, requirements=["C", "W"])
    np.nan_to_num(array, copy=False)  # NaN would poison every loss and metric
    return torch.from_numpy(array)


def volume_stem(name: str) -> str | None:
    """``case1`` for ``case1.nii.gz`` (any volume suffix, any case); None for other files."""
    lowered = name.lower()
    for suffix in VOLUME_SUFFIXES:
        if lowered.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def read_volume_folders(root: Path, skipped: SkipReport, *, max_pixels: int) -> SegmentationSource:
    """Read a volume dataset (see the module docstring); every label volume is checked.

    Raises:
        DataError: no images/ folder, or a malformed classes.txt or spacing.json.
    """
    del max_pixels  # see the module docstring
    root = Path(os.path.abspath(root))
    tops = split_tops(root)
    if not tops:
        raise DataError(f"{root}: no images/ folder; expected images/ and labels/, or train/images and train/labels")
    classes = read_classes(root)
    declared = len(classes.names) if classes.names is not None else None
    known = _spacing_file(root / SPACING_FILE)
    splits: dict[str, list[MaskRecord]] = {}
    for split, top in tops.items():
        records = splits.setdefault(split, [])
        for image, label in pair_by_stem(top / "images", top / "labels", volume_stem, volume_stem, skipped):
            try:
                records.append(_record(image, label, top, declared, known, skipped))
            except BadImageError as exc:
                skipped.add(exc.file, exc.reason, exc.detail)
    _keep_common_channels(splits, skipped)
    return SegmentationSource(splits, finish_classes(splits, classes.names), VolumeReader())


def read_volume(path: str | os.PathLike[str], key: str) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """The array ``key`` ("image" or "label") of a volume file, laid out ``[C, D, H, W]`` / ``[D, H, W]``
    as stored (see the axis convention), and the spacing (z, y, x) the file carries, if any.

    Raises:
        BadImageError: the file is missing, empty, damaged, or holds no such array.
    """
    path = Path(path)
    return _guarded(path, lambda: _read(path, key, header_only=False))


def probe_volume(path: str | os.PathLike[str]) -> tuple[tuple[int, ...], tuple[float, ...] | None, bool]:
    """Shape ``(C, D, H, W)``, spacing and whether a "label" array rides along, from headers only."""
    path = Path(path)
    (shape, dtype), spacing = _guarded(path, lambda: _read(path, "image", header_only=True))
    shape = (1, *shape) if len(shape) == 3 else tuple(shape)
    _check_image(shape, dtype, path)
    has_label = path.name.lower().endswith(".npz") and _guarded(path, lambda: "label.npy" in _npz_names(path))
    return shape, spacing, has_label


def nibabel() -> Any:
    """The nibabel module, imported on first use.

    Raises:
        ConfigError: nibabel is not installed.
    """
    try:
        import nibabel as nib
    except ImportError:
        raise ConfigError("NIfTI volumes need the optional package 'nibabel': pip install 'cnnlab[medical]'") from None
    return nib


def _record(
    image: Path, label: Path | None, top: Path, declared: int | None, known: dict[str, Any], skipped: SkipReport
) -> MaskRecord:
    shape, image_spacing, has_label = probe_volume(image)
    if label is None:
        if not has_label:
            detail = f"no label named {volume_stem(image.name)}.* in {top / 'labels'}, and no 'label' array in the file"
            raise BadImageError(image, "no label", detail)
        label = image
    raw, label_spacing = read_volume(label, "label")
    ids = _label_layout(raw, label)
    if ids.shape != shape[1:]:
        sizes = f"label {'x'.join(map(str, ids.shape))}, image {'x'.join(map(str, shape[1:]))} (D x H x W)"
        raise BadImageError(label, "shape mismatch", f"{sizes}; a label must cover its image voxel for voxel")
    if image_spacing and label_spacing and not np.allclose(image_spacing, label_spacing, rtol=SPACING_TOLERANCE):
        detail = (
            f"label spacing {_mm(label_spacing)}, image {_mm(image_spacing)} (z, y, x); resample one onto the other"
        )
        raise BadImageError(label, "spacing mismatch", detail)
    labels, counts = summarise_mask(ids, label, declared)
    stem = volume_stem(image.name) or image.stem
    spacing = image_spacing or label_spacing or known.get(stem)
    if spacing is None:
        skipped.add(image, "spacing assumed 1 mm", f"no spacing in the file or in {SPACING_FILE}; give [z, y, x] there")
    return MaskRecord(
        str(image), str(label), shape[1:], labels, channels=shape[0], spacing=spacing or (), pixels=counts
    )


def _read(path: Path, key: str, *, header_only: bool) -> tuple[Any, tuple[float, ...] | None]:
    """(array, or its shape when ``header_only``) and the file's spacing, laid out per the convention."""
    if path.stat().st_size == 0:
        raise BadImageError(path, "empty file", "0 bytes")
    name = path.name.lower()
    if name.endswith(".npy"):
        array = np.load(path, mmap_mode="r" if header_only else None, allow_pickle=False)
        return ((array.shape, array.dtype) if header_only else array), None
    if name.endswith(".npz"):
        return _read_npz(path, key, header_only)
    nifti = nibabel().load(path)
    zooms = tuple(float(z) for z in nifti.header.get_zooms()[:3])
    spacing = zooms[::-1] if len(zooms) == 3 and all(np.isfinite(zooms)) and min(zooms) > 0 else None
    if header_only:
        return (tuple(reversed(nifti.shape)), nifti.get_data_dtype()), spacing
    data = nifti.get_fdata(dtype=np.float32) if key == "image" else np.asanyarray(nifti.dataobj)
    return np.ascontiguousarray(data.transpose(tuple(reversed(range(data.ndim))))), spacing


def _read_npz(path: Path, key: str, header_only: bool) -> tuple[Any, tuple[float, ...] | None]:
    names = _npz_names(path)
    member = f"{key}.npy" if f"{key}.npy" in names else (names[0] if len(names) == 1 else None)
    if member is None:
        listed = ", ".join(n.removesuffix(".npy") for n in names) or "none"
        raise BadImageError(path, "not a volume", f"no '{key}' array (arrays: {listed})")
    with zipfile.ZipFile(path) as archive:
        spacing = _npz_spacing(archive, path) if "spacing.npy" in names and member != "spacing.npy" else None
        with archive.open(member) as stream:
            if header_only:
                version = np.lib.format.read_magic(stream)
                header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = header(stream)
                return (shape, dtype), spacing
            return np.lib.format.read_array(stream, allow_pickle=False), spacing


def _npz_spacing(archive: zipfile.ZipFile, path: Path) -> tuple[float, ...]:
    with archive.open("spacing.npy") as stream:
        values = np.lib.format.read_array(stream, allow_pickle=False).astype(np.float64).reshape(-1)
    if len(values) != 3 or not np.isfinite(values).all() or values.min() <= 0:
        raise BadImageError(path, "not a volume", f"'spacing' must be 3 positive mm values (z, y, x), got {values}")
    return tuple(float(v) for v in values)


def _npz_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return [n for n in archive.namelist() if n.endswith(".npy")]


def _guarded(path: Path, read: Callable[[], Any]) -> Any:
    """``read()`` with every way a file can be bad turned into BadImageError (ConfigError passes)."""
    try:
        return read()
    except (BadImageError, ConfigError):
        raise
    except FileNotFoundError:
        raise BadImageError(path, "missing file", "no such file") from None
    except PermissionError as exc:
        raise BadImageError(path, "unreadable", exc.strerror or str(exc)) from None
    except Exception as exc:  # numpy, zipfile, gzip and nibabel signal damage with many types
        text = f"{type(exc).__name__}: {exc}"[:200]
        clues = ("truncat", "mmap length", "end of", "eof", "not enough", "could only read", "fully written")
        short = any(word in text.lower() for word in clues)
        raise BadImageError(path, "truncated" if short else "corrupt", text) from None


def _image_layout(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 3:
        array = array[None]
    _check_image(array.shape, array.dtype, path)
    return array


def _check_image(shape: Sequence[int], dtype: np.dtype, path: Path) -> None:
    if len(shape) != 4 or 0 in shape or not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        detail = f"array of shape {tuple(shape)}, {dtype}; expected [D, H, W] or [C, D, H, W] numbers"
        raise BadImageError(path, "not a volume", detail)


def _label_layout(array: np.ndarray, path: Path) -> np.ndarray:
    """A label volume as integer ``[D, H, W]`` (a leading axis of 1 dropped; integral floats accepted)."""
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise BadImageError(
            path, "not a volume", f"label array of shape {array.shape}, {array.dtype}; expected [D, H, W]"
        )
    if array.dtype == bool:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or (array != np.round(array)).any():
            raise BadImageError(path, "bad label", "non-integer values; labels must be whole class ids")
        return array.astype(np.int64)
    return array


def _spacing_file(file: Path) -> dict[str, tuple[float, ...]]:
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {file}: {exc}; it must map each file stem to [z, y, x] in mm") from None
    found: dict[str, tuple[float, ...]] = {}
    for stem, value in data.items() if isinstance(data, dict) else [("(top level)", data)]:
        ok = isinstance(value, list) and len(value) == 3 and all(isinstance(v, (int, float)) and v > 0 for v in value)
        if not ok:
            raise DataError(f"{file}: {stem!r} must be [z, y, x], three positive mm values, got {value!r}")
        found[stem] = tuple(float(v) for v in value)
    return found


def _keep_common_channels(splits: dict[str, list[MaskRecord]], skipped: SkipReport) -> None:
    """Drop volumes whose channel count differs from the most common one (a batch needs one C)."""
    counts = Counter(r.channels for found in splits.values() for r in found)
    if len(counts) < 2:
        return
    common = counts.most_common(1)[0][0]
    for split, found in splits.items():
        for record in found:
            if record.channels != common:
                skipped.add(record.image, "channel mismatch", f"{record.channels} channels; most volumes have {common}")
        splits[split] = [r for r in found if r.channels == common]


def _mm(spacing: Sequence[float]) -> str:
    return "(" + ", ".join(f"{s:.4g}" for s in spacing) + ") mm"
