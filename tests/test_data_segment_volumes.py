"""Segmentation data, 3D: NumPy and NIfTI volume folders on tiny hand-written (and broken) files, spacing
and axis order, the 3D shapes generator, and the 3D transforms."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.data.bundle import DatasetBundle
from cnnlab.data.mask_transforms import build_mask_transform, segmentation_collate
from cnnlab.data.segmentation import (
    IGNORE_INDEX,
    load_volume,
    make_segment_shapes,
    open_segmentation,
    shapes_sample,
)
from cnnlab.data.stratify import SplitOptions
from cnnlab.errors import ConfigError

nib = pytest.importorskip("nibabel")
ALL_TRAIN = SplitOptions(val_fraction=0.0, test_fraction=0.0)


def volume(shape: tuple[int, ...] = (3, 4, 5), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def label(shape: tuple[int, int, int] = (3, 4, 5), value: int = 1) -> np.ndarray:
    ids = np.zeros(shape, np.uint8)
    ids[1:, 1:3, 2:] = value
    return ids


def nifti(path: Path, array: np.ndarray, spacing: tuple[float, float, float]) -> Path:
    """``array`` laid out [D, H, W] ([C, D, H, W]) written as NIfTI, whose axes are (x, y, z[, c])."""
    path.parent.mkdir(parents=True, exist_ok=True)
    order = tuple(reversed(range(array.ndim)))
    nib.save(nib.Nifti1Image(np.ascontiguousarray(array.transpose(order)), np.diag([*spacing[::-1], 1.0])), path)
    return path


def save(path: Path, array: np.ndarray | None = None, **arrays: np.ndarray) -> Path:
    """``array`` as .npy, or ``arrays`` as .npz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array is not None:
        np.save(path, array)
    else:
        np.savez(path, **arrays)
    return path


def reasons(bundle: DatasetBundle) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for example in bundle.skipped.examples:
        found.setdefault(example["reason"], []).append(Path(example["file"]).name)
    return found


def test_numpy_volumes_pairs_self_contained_npz_and_spacing_sources(tmp_path: Path) -> None:
    save(tmp_path / "images" / "a.npz", image=volume(), label=label(), spacing=np.array([2.0, 0.5, 0.5]))
    save(tmp_path / "images" / "b.npy", volume(seed=1))
    save(tmp_path / "labels" / "b.npy", label(value=2).astype(np.int32))
    save(tmp_path / "images" / "c.npy", volume(seed=2))
    save(tmp_path / "labels" / "c.npz", label=label().astype(np.float32))  # integral floats are fine
    (tmp_path / "spacing.json").write_text(json.dumps({"b": [3, 1, 1]}))
    bundle = open_segmentation(tmp_path, options=ALL_TRAIN)
    assert bundle.class_names == ["background", "1", "2"] and bundle.channels == 1
    assert bundle.native_size == (3, 4, 5) and bundle.split_policy.endswith("(volumes)")
    assert reasons(bundle) == {"spacing assumed 1 mm": ["c.npy"]}
    split = bundle.splits["train"]
    assert split.spatial_dims == 3
    found = {Path(r.image).stem: split[i] for i, r in enumerate(split.records)}
    image, target = found["a"]
    assert image.dtype == torch.float32 and image.shape == (1, 3, 4, 5)
    assert torch.equal(image[0], torch.from_numpy(volume()))
    assert target["mask"].dtype == torch.int64 and target["mask"].tolist() == label().tolist()
    assert [found[s][1]["spacing"] for s in "abc"] == [(2.0, 0.5, 0.5), (3.0, 1.0, 1.0), (1.0, 1.0, 1.0)]
    assert found["b"][1]["mask"].max() == 2
    assert split.pixel_counts() == [60 * 3 - 12 * 3, 24, 12] and split.class_counts() == [3, 2, 1]


def test_nifti_axes_and_spacing_round_trip(tmp_path: Path) -> None:
    image = volume((2, 3, 4, 5))  # two channels
    nifti(tmp_path / "images" / "a.nii.gz", image, (2.5, 0.7, 0.6))
    nifti(tmp_path / "labels" / "a.nii.gz", label((3, 4, 5)), (2.5, 0.7, 0.6))
    stored = nib.load(tmp_path / "images" / "a.nii.gz")
    assert stored.shape == (5, 4, 3, 2) and np.allclose(stored.header.get_zooms()[:3], (0.6, 0.7, 2.5))
    split = open_segmentation(tmp_path, options=ALL_TRAIN).splits["train"]
    loaded, target = split[0]
    assert split.channels == 2 and loaded.shape == (2, 3, 4, 5)
    assert torch.allclose(loaded, torch.from_numpy(image)) and target["mask"].tolist() == label().tolist()
    assert np.allclose(target["spacing"], (2.5, 0.7, 0.6))
    assert torch.equal(load_volume(tmp_path / "images" / "a.nii.gz"), loaded)


def test_bad_volumes_are_skipped_with_their_reasons(tmp_path: Path) -> None:
    images, labels = tmp_path / "images", tmp_path / "labels"
    nifti(images / "good.nii.gz", volume(), (2, 1, 1))
    nifti(labels / "good.nii.gz", label(), (2, 1, 1))
    nifti(images / "zoom.nii.gz", volume(), (2, 1, 1))
    nifti(labels / "zoom.nii.gz", label(), (2, 1, 1.01))  # spacing mismatch
    save(images / "shape.npy", volume())
    save(labels / "shape.npy", label((3, 4, 6)))
    save(images / "alone.npy", volume())  # no label
    save(labels / "orphan.npy", label())  # no image
    save(images / "frac.npy", volume())
    save(labels / "frac.npy", label().astype(np.float32) / 2)  # bad label
    save(images / "cut.npy", volume())
    data = save(labels / "cut.npy", label()).read_bytes()
    (labels / "cut.npy").write_bytes(data[:-20])  # truncated
    save(images / "flat.npy", volume((4, 5)))  # not a volume
    save(labels / "flat.npy", label())
    (tmp_path / "classes.txt").write_text("background\norgan\n")
    save(images / "many.npy", volume())
    save(labels / "many.npy", label(value=4))  # unknown class
    (images / "empty.npz").write_bytes(b"")
    bundle = open_segmentation(tmp_path, options=ALL_TRAIN)
    assert [Path(r.image).name for r in bundle.splits["train"].records] == ["good.nii.gz"]
    assert reasons(bundle) == {
        "no image": ["orphan.npy"],
        "no label": ["alone.npy"],
        "empty file": ["empty.npz"],
        "not a volume": ["flat.npy"],
        "truncated": ["cut.npy"],
        "bad label": ["frac.npy"],
        "unknown class": ["many.npy"],
        "shape mismatch": ["shape.npy"],
        "spacing mismatch": ["zoom.nii.gz"],
    }
    details = {e["reason"]: e["detail"] for e in bundle.skipped.examples}
    assert "label 3x4x6, image 3x4x5" in details["shape mismatch"]
    assert "label spacing (2, 1, 1.01) mm, image (2, 1, 1) mm" in details["spacing mismatch"]


def test_nifti_without_nibabel_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nifti(tmp_path / "images" / "a.nii.gz", volume(), (1, 1, 1))
    nifti(tmp_path / "labels" / "a.nii.gz", label(), (1, 1, 1))
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(ConfigError, match=r"pip install 'cnnlab\[medical\]'"):
        open_segmentation(tmp_path)


def test_shapes_3d_are_deterministic_exact_and_anisotropic(tmp_path: Path) -> None:
    first = make_segment_shapes(tmp_path / "a", dims=3, n_train=3, n_val=1, n_test=1, size=24, seed=2)
    second = make_segment_shapes(tmp_path / "b", dims=3, n_train=3, n_val=1, n_test=1, size=24, seed=2)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 6 and all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    image, ids, spacing = shapes_sample(0, dims=3, size=24, seed=2, part=1)
    with np.load(first / "val" / "images" / "00000.npz") as stored:
        assert np.array_equal(stored["image"], image) and np.array_equal(stored["label"], ids)
        assert stored["spacing"].tolist() == [2.0, 1.0, 1.0] == list(spacing)
    assert image.dtype == np.float32 and set(np.unique(ids)) <= {0, 1, 2, 3} and len(np.unique(ids)) >= 2
    bundle = open_segmentation(first)
    assert bundle.class_names == ["background", "ellipsoid", "box", "cylinder"] and bundle.skipped.total == 0
    assert bundle.splits["val"][0][1]["spacing"] == (2.0, 1.0, 1.0)
    nii = make_segment_shapes(tmp_path / "n", dims=3, n_train=1, n_val=1, n_test=0, size=24, seed=2, fmt="nifti")
    again = make_segment_shapes(tmp_path / "m", dims=3, n_train=1, n_val=1, n_test=0, size=24, seed=2, fmt="nifti")
    assert (nii / "val/images/00000.nii.gz").read_bytes() == (again / "val/images/00000.nii.gz").read_bytes()
    loaded, target = open_segmentation(nii).splits["val"][0]
    assert torch.equal(loaded[0], torch.from_numpy(image)) and target["mask"].numpy().tolist() == ids.tolist()
    assert np.allclose(target["spacing"], spacing)


def cube() -> tuple[torch.Tensor, dict]:
    """A [1, 6, 8, 10] volume equal to 10 * its label, label 1 in an off-centre block."""
    ids = torch.zeros(6, 8, 10, dtype=torch.int64)
    ids[1:3, 2:7, 0:4] = 1
    return (10 * ids.float())[None], {"mask": ids, "spacing": (2.0, 1.0, 1.0), "index": 3}


def test_3d_train_transform_crops_patches_that_stay_aligned() -> None:
    torch.manual_seed(0)
    transform = build_mask_transform(
        input_size=[1, 4, 12, 12], mean=[0.0], std=[1.0], train=True, augment="light", spatial_dims=3
    )
    seen = set()
    for _ in range(30):
        image, target = transform(*cube())
        mask = target["mask"]
        assert image.shape == (1, 4, 12, 12) and mask.shape == (4, 12, 12) and mask.dtype == torch.int64
        real = mask != IGNORE_INDEX
        assert (image[0][~real] == 0).all()  # padding
        values = image[0][real]
        scale = values.max() / 10 if (mask == 1).any() else None
        if scale is not None:  # intensity scale and shift apply to the whole patch alike
            shift = values[mask[real] == 0]
            on = values[mask[real] == 1]
            assert torch.allclose(on - shift.mean(), torch.full_like(on, float(on.mean() - shift.mean())), atol=1e-5)
            assert 8.5 < float(on.mean() - shift.mean()) < 11.5
            seen.add(tuple(int(v) for v in torch.nonzero(mask == 1).float().mean(0).round()))
    assert len(seen) > 3  # different crops, flips and turns
    plain = build_mask_transform(input_size=[1, 4, 4, 4], mean=[5.0], std=[2.0], train=False, spatial_dims=3)
    image, target = plain(*cube())
    assert image.shape == (1, 6, 8, 10) and torch.equal(target["mask"], cube()[1]["mask"])
    assert torch.allclose(image, (cube()[0] - 5) / 2)


def test_3d_collate_pads_to_the_largest_volume() -> None:
    a = cube()
    b = (torch.ones(1, 4, 9, 5), {"mask": torch.ones(4, 9, 5, dtype=torch.int64), "spacing": (1, 1, 1), "index": 8})
    images, batch = segmentation_collate([a, b])
    assert images.shape == (2, 1, 6, 9, 10) and batch["masks"].shape == (2, 6, 9, 10)
    assert (batch["masks"][1, 4:] == IGNORE_INDEX).all() and (batch["masks"][0, :, 8] == IGNORE_INDEX).all()
    assert batch["spacing"].tolist() == [[2.0, 1.0, 1.0], [1.0, 1.0, 1.0]] and batch["index"].tolist() == [3, 8]
