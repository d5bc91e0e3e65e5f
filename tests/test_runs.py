"""Run directories, model cards and checkpoints, including every way a file can be bad."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from cnnlab.errors import CheckpointError, ConfigError, UnsafeCheckpointError
from cnnlab.registry import create_model
from cnnlab.runs import ModelCard, RunDir, load_run, next_run_path, read_card, save_model
from cnnlab.runs.atomic import atomic_write_bytes
from cnnlab.runs.statedict import read_state_dict


def _card(**overrides: object) -> ModelCard:
    fields = dict(
        architecture="lenet5",
        num_classes=10,
        in_chans=1,
        input_size=[1, 32, 32],
        mean=[0.5],
        std=[0.5],
        class_names=[str(i) for i in range(10)],
    )
    fields.update(overrides)
    return ModelCard(**fields)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    model = create_model("lenet5").eval()
    save_model(model, _card(), tmp_path / "run")
    return tmp_path / "run"


def test_save_writes_safetensors_with_card_and_json(run_dir: Path) -> None:
    assert (run_dir / "model.safetensors").is_file() and (run_dir / "card.json").is_file()
    assert json.loads((run_dir / "card.json").read_text())["architecture"] == "lenet5"
    (run_dir / "card.json").unlink()  # the copy inside the safetensors metadata is enough
    assert read_card(run_dir).class_names == [str(i) for i in range(10)]


def test_load_run_reproduces_outputs(run_dir: Path) -> None:
    x = torch.randn(2, 1, 32, 32)
    first, second = load_run(run_dir), load_run(run_dir / "model.safetensors")
    assert not first.model.training
    with torch.no_grad():
        assert torch.equal(first.model(x), second.model(x))


def test_missing_card_is_a_clear_error(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    (tmp_path / "bare").mkdir()
    save_file(create_model("lenet5").state_dict(), str(tmp_path / "bare" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="no model card"):
        load_run(tmp_path / "bare")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_run(tmp_path / "nowhere")


def test_card_missing_fields_or_bad_json(run_dir: Path) -> None:
    (run_dir / "card.json").write_text('{"architecture": "lenet5"}')
    with pytest.raises(CheckpointError, match="lacks field.*num_classes"):
        load_run(run_dir)
    (run_dir / "card.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_run(run_dir)


def test_truncated_and_corrupt_safetensors(run_dir: Path) -> None:
    weights = run_dir / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated|corrupt|not a readable"):
        load_run(run_dir)
    weights.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError):
        load_run(run_dir)
    weights.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_state_dict(weights)


def test_weights_that_do_not_match_the_card(run_dir: Path) -> None:
    card = json.loads((run_dir / "card.json").read_text())
    card["num_classes"] = 5
    (run_dir / "card.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="does not match.*wrong shape: fc.weight"):
        load_run(run_dir)


class _Payload:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned > pwned.txt",))


def test_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    with evil.open("wb") as f:
        pickle.dump({"weight": _Payload()}, f)
    with pytest.raises(UnsafeCheckpointError, match="arbitrary code"):
        read_state_dict(evil)
    assert not (tmp_path / "pwned.txt").exists()


def test_plain_state_dict_pickle_is_imported(tmp_path: Path) -> None:
    model = create_model("lenet5")
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "w.pth")
    state = read_state_dict(tmp_path / "w.pth")
    assert set(state) == set(model.state_dict())


def test_unknown_suffix_and_non_state_dict(tmp_path: Path) -> None:
    (tmp_path / "w.h5").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"\.safetensors"):
        read_state_dict(tmp_path / "w.h5")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="no state dict"):
        read_state_dict(tmp_path / "list.pt")


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")

    def crash(*_: object) -> None:
        raise OSError("disk died")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left behind


def test_run_dir_never_overwrites_without_asking(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "r", "train")
    (run.path / "metrics.json").write_text("{}")
    with pytest.raises(ConfigError, match="already holds a run"):
        RunDir.create(tmp_path / "r", "train")
    assert (run.path / "metrics.json").exists()
    RunDir.create(tmp_path / "r", "train", overwrite=True)
    assert not (run.path / "metrics.json").exists()


def test_default_run_names_count_up(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    assert next_run_path("train", root).name == "train-1"
    (root / "train-1").mkdir(parents=True)
    (root / "train-7").mkdir()
    assert next_run_path("train", root).name == "train-8"


def test_metrics_csv_and_run_json(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "r", "train")
    run.write_metrics_csv([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "acc": 0.9}])
    lines = (run.path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,acc" and lines[2] == "2,0.25,0.9"
    run.update_run_json(command="train")
    assert run.read_json("run.json")["command"] == "train"
