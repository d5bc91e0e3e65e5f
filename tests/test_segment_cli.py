"""Segmentation as a user meets it on the command line: every command the README's Segment section
shows, on data small enough to take seconds (learning itself is tests/test_segment.py's business)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


def _ok(*args: str) -> str:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_make_info_train_evaluate_predict_export(tmp_path: Path) -> None:
    data, run, out = tmp_path / "seg", tmp_path / "run", tmp_path / "masks"
    _ok("data", "make", "shapes", "--task", "segment", "--out", str(data), "--train", "16", "--val", "4",
        "--test", "4", "--size", "32")  # fmt: skip
    info = json.loads(_ok("data", "info", str(data), "--json"))
    assert info["task"] == "segment" and info["classes"][0] == "background"
    assert info["splits"]["train"]["empty_masks"] == 0 and sum(info["splits"]["train"]["pixel_share"]) > 0.99

    printed = _ok("train", "--data", str(data), "--model", "unet", "--input-size", "32", "--loss", "focal+dice",
                  "--epochs", "1", "--batch-size", "8", "--option", "base_width=4", "--out", str(run))  # fmt: skip
    assert "test mIoU" in printed
    assert json.loads((run / "run.json").read_text())["task"]["loss"] == "focal+dice"
    metrics = json.loads(_ok("evaluate", str(run), "--json"))
    assert set(metrics["iou_per_class"]) == set(info["classes"]) and 0 <= metrics["miou"] <= 1
    assert "mIoU" in _ok("evaluate", str(run))

    found = json.loads(_ok("predict", str(run), str(data / "test" / "images"), "--draw", str(out), "--json"))
    assert len(found) == 4 and all(Path(r["mask"]).is_file() and Path(r["overlay"]).is_file() for r in found)
    assert found[0]["mask_size"] == [32, 32] and found[0]["class_share"]

    table = _ok("export", str(run), "--format", "onnx")
    assert "pixels agree" in table and "pass" in table


def test_volumes_are_made_and_described_in_voxels(tmp_path: Path) -> None:
    data = tmp_path / "vol"
    _ok("data", "make", "shapes", "--task", "segment", "--dims", "3", "--out", str(data), "--train", "2",
        "--val", "1", "--test", "1", "--size", "16")  # fmt: skip
    printed = _ok("data", "info", str(data))
    assert "16x16x16 voxels" in printed and "spacing (z, y, x) mm: [2.0, 1.0, 1.0]" in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "make", "shapes", "--task", "classify", "--out", "x"], "detect or segment"),
        (["train", "--data", "builtin:digits", "--model", "lenet5", "--loss", "dice"], "--loss"),
    ],
)
def test_segmentation_user_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr
