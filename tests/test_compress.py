"""Compression on a small real model: int8 with sensitivity analysis, pruning that keeps residual
networks valid, quantization-aware fine-tuning, distillation, the report, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnlab.compress import compress_run, qat
from cnnlab.compress.prune import cpu_channel_multiple
from cnnlab.compress.quantize import Quantizer, layer_groups, sensitivity_ranking
from cnnlab.errors import ConfigError
from cnnlab.registry import create_model
from cnnlab.runs import load_run
from cnnlab.runtime import load_predictor
from cnnlab.train import train_model

pytest.importorskip("torch_pruning")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("base") / "run"
    train_model(
        data="builtin:digits",
        model="cifar_resnet20",
        model_options={"shortcut": "B"},
        epochs=5,
        out=out,
        progress=False,
    )
    return out


def test_int8_with_a_report_and_a_deployable_artifact(base: Path, tmp_path: Path) -> None:
    report = compress_run(base, quantize="int8", out=tmp_path / "int8", qat_epochs=0)
    names = [s.name for s in report.steps]
    assert names == ["baseline", "int8 (PTQ)"]
    baseline, int8 = report.steps
    assert int8.size_bytes < 0.4 * baseline.size_bytes  # int8 weights: about a quarter of fp32
    assert abs(baseline.test_top1 - int8.test_top1) < 0.05
    assert set(int8.latency_ms) >= {"onnxruntime"} and report.verdict
    record = json.loads((tmp_path / "int8" / "compression.json").read_text())
    assert record["quantization"]["per_channel"] and record["quantization"]["calibration"] == "minmax"
    assert (tmp_path / "int8" / "compression.png").stat().st_size > 5000
    predictor = load_predictor(tmp_path / "int8" / "export" / "model.int8.onnx")
    from cnnlab.data import open_dataset

    split = open_dataset("builtin:digits").splits["test"]
    labels = [r["label"] for r in predictor.predict([split[i][0] for i in range(20)])]
    truth = [str(split[i][1]) for i in range(20)]
    assert sum(a == b for a, b in zip(labels, truth, strict=True)) >= 16
    chosen = load_predictor(tmp_path / "int8")  # the artifact the verdict recommended
    assert chosen.runtime == "onnxruntime"


def test_int8_for_openvino_through_nncf(base: Path, tmp_path: Path) -> None:
    pytest.importorskip("nncf")
    report = compress_run(base, quantize="int8", runtime="openvino", out=tmp_path / "ov")
    baseline, int8 = report.steps
    weights = tmp_path / "ov" / "export" / "model.int8.bin"
    assert int8.name == "int8 (NNCF)" and weights.stat().st_size < 0.3 * baseline.size_bytes  # int8 weights
    assert int8.size_bytes > weights.stat().st_size  # the size reported counts the .xml graph too
    assert abs(baseline.test_top1 - int8.test_top1) < 0.05 and "openvino" in int8.latency_ms
    record = json.loads((tmp_path / "ov" / "compression.json").read_text())["quantization"]
    assert record["nncf"]["attempts"][0]["method"] == "nncf.quantize"
    artifact = tmp_path / "ov" / "export" / "model.int8.xml"
    predictor = load_predictor(artifact)  # the IR carries its card: runs without the run
    assert predictor.runtime == "openvino"
    import openvino as ov

    ops = {op.get_type_name() for op in ov.Core().read_model(str(artifact)).get_ops()}
    assert "FakeQuantize" in ops  # really quantized, not a float copy


def test_nncf_accuracy_control_returns_costly_operations_to_float(base: Path, tmp_path: Path) -> None:
    pytest.importorskip("nncf")
    import numpy as np
    import openvino as ov

    from cnnlab.compress.evaluation import EvalSet, export_fp32
    from cnnlab.compress.openvino_int8 import quantize_for_openvino
    from cnnlab.data import open_dataset

    run = load_run(base)
    val = EvalSet(open_dataset("builtin:digits"), run.card, "val")
    path = export_fp32(run.model, run.card, tmp_path)
    images = [x.numpy() for x in torch.cat([x for x, _ in val.batches])[:48].split(8)]
    reference = ov.compile_model(ov.Core().read_model(str(path)), "CPU")
    # a score int8 cannot keep: how closely the logits follow float's (1.0 for float itself)
    validation = [(x, np.asarray(reference(x)[0])) for x in images]

    def fidelity(compiled: object, data: list) -> float:
        errors = [np.abs(np.asarray(compiled(x)[0]) - logits).mean() for x, logits in data]  # type: ignore[operator]
        return float(1.0 / (1.0 + 10 * np.mean(errors)))

    result = quantize_for_openvino(path, images, validation, fidelity, 1.0, 0.02, tmp_path / "int8.xml")
    first, controlled = result.attempts
    assert first["method"] == "nncf.quantize" and first["drop"] > 0.02  # plain int8 moves the logits too far
    assert controlled["method"] == "nncf.quantize_with_accuracy_control"
    assert result.float_ops > 0 and controlled["accuracy"] > first["accuracy"]  # float where it cost the most
    assert (tmp_path / "int8.xml").is_file()


def test_sensitivity_analysis_keeps_costly_layers_float(base: Path, tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    from cnnlab.compress.evaluation import EvalSet, export_fp32
    from cnnlab.compress.quantize import quantize_within_budget
    from cnnlab.data import open_dataset

    run = load_run(base)
    val = EvalSet(open_dataset("builtin:digits"), run.card, "val", limit=128)
    path = export_fp32(run.model, run.card, tmp_path)
    batches = val.numpy_batches(128)

    def logits(model: Path) -> np.ndarray:
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return np.concatenate([session.run(None, {name: b})[0] for b in batches])

    reference = logits(path)

    def fidelity(model: Path) -> float:  # every int8 rounding costs some of it, so max_drop=0 forces float layers
        return -float(np.abs(logits(model) - reference).mean())

    with Quantizer(path, batches) as quantizer:
        result = quantize_within_budget(quantizer, fidelity, 0.0, 0.0, tmp_path / "int8.onnx")
    assert not quantizer.workdir.exists()  # its scratch models are gone with it
    groups = layer_groups(path)
    assert len(result.attempts) > 1 and len(result.sensitivity) == len(groups)
    drops = [s.drop for s in result.sensitivity]
    assert drops == sorted(drops, reverse=True)
    assert result.float_groups and all(f["why"] and f["group"] in groups for f in result.float_groups)
    assert [f["group"] for f in result.float_groups] == [
        s.group for s in result.sensitivity[: len(result.float_groups)]
    ]
    assert result.attempts[-1]["drop"] < result.attempts[0]["drop"]  # keeping the costly groups float helped
    assert not result.within_budget and len(result.float_groups) == len(groups) // 2  # past half: QAT's job


def test_sensitivity_ranking_is_deterministic(base: Path, tmp_path: Path) -> None:
    from cnnlab.compress.evaluation import EvalSet, export_fp32
    from cnnlab.data import open_dataset

    run = load_run(base)
    bundle = open_dataset("builtin:digits")
    val = EvalSet(bundle, run.card, "val")
    path = export_fp32(run.model, run.card, tmp_path)
    groups = layer_groups(path)
    assert any(g.startswith("stem") for g in groups) and any(g.startswith("stages.2") for g in groups)
    assert "head" in groups or any(g.startswith("head") for g in groups)
    rankings = []
    for _ in range(2):
        with Quantizer(path, val.numpy_batches(64)) as quantizer:
            ranking = sensitivity_ranking(quantizer, dict(list(groups.items())[:4]), val.onnx_top1, 1.0)
        rankings.append([s.group for s in ranking])
    assert rankings[0] == rankings[1]


def test_pruning_keeps_residual_models_valid_and_faster(base: Path, tmp_path: Path) -> None:
    report = compress_run(
        base, prune=0.5, prune_steps=2, recover_epochs=1, recover_min_steps=150, out=tmp_path / "pruned"
    )
    baseline, pruned = report.steps
    record = json.loads((tmp_path / "pruned" / "compression.json").read_text())
    history = record["pruning"]["steps"]
    if len(history) == 2:  # both steps bought latency: half the channels of the stages that can lose them
        # (16-channel layers stay whole where the CPU's block is 16, so MACs fall by half rather than 3/4)
        assert pruned.params < 0.5 * baseline.params and pruned.macs < 0.6 * baseline.macs
        assert history[1]["latency_ms"] < history[0]["latency_ms"] and "reached 50%" in record["pruning"]["stopped"]
    else:  # a step that is not faster stops the pruning, and says so
        assert len(history) == 1 and not history[0]["improved"] and "latency" in record["pruning"]["stopped"]
    assert pruned.params < 0.8 * baseline.params and pruned.macs < 0.8 * baseline.macs
    assert pruned.val_top1 > 0.8  # the recovery fine-tune brought it back
    loaded = load_run(tmp_path / "pruned")  # rebuilt from safetensors alone: shapes from the weights
    assert loaded.card.shapes_from_weights
    multiple = record["pruning"]["channel_multiple"]
    assert multiple == cpu_channel_multiple()  # the CPU's vector block: 16 on AVX-512, 8 on AVX2
    widths = [m.out_channels for m in loaded.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w % multiple == 0 for w in widths), widths
    with torch.no_grad():
        assert loaded.model(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    from cnnlab.export import export_run

    assert export_run(tmp_path / "pruned", "onnx", pick_runtime=False).passed
    assert (tmp_path / "pruned" / "steps" / "prune-1" / "metrics.csv").is_file()  # each recovery is a traceable run


def test_recovery_trains_on_the_base_runs_own_images(tmp_path: Path) -> None:
    few = tmp_path / "few"
    train_model(data="builtin:digits", model="lenet5", epochs=1, train_per_class=10, out=few, progress=False)
    compress_run(few, distill_from=str(few), recover_epochs=1, recover_min_steps=1, out=tmp_path / "kd")
    seen = json.loads((tmp_path / "kd" / "steps" / "distill" / "run.json").read_text())["data"]["splits"]["train"]
    assert seen["size"] == 100  # the base run's 10 per class, not the whole training split


def test_zero_padded_shortcuts_cannot_be_pruned_and_say_why(tmp_path: Path) -> None:
    from cnnlab.compress.prune import prune_iteratively

    model = create_model("cifar_resnet20", num_classes=10)  # option A: parameter-free zero-padding
    with pytest.raises(ConfigError, match="shortcut=B"):
        prune_iteratively(
            model,
            torch.randn(1, 3, 32, 32),
            ratio=0.5,
            steps=1,
            importance="magnitude",
            recover=lambda m, k: 0.0,
            latency=lambda before, after: (1.0, 1.0),
            round_to=8,  # at multiples of 16 the residual widths (16/32/64) happen to stay whole
        )


def test_the_int8_verdict_signs_the_accuracy_change() -> None:
    from cnnlab.compress.api import _verdict
    from cnnlab.compress.report import StepRecord

    def step(name: str, val: float, ms: float) -> StepRecord:
        return StepRecord(name, val, val, 1000, 10**6, 4000, {"onnxruntime": ms})

    artifacts = {"baseline": Path("model.onnx"), "int8 (PTQ)": Path("model.int8.onnx")}
    lost = _verdict([step("baseline", 0.90, 2.0), step("int8 (PTQ)", 0.895, 1.0)], artifacts, "onnxruntime", 1.0, True)
    assert "2.00x faster" in lost[0] and "-0.50 points" in lost[0] and lost[1]["precision"] == "int8"
    gained = _verdict(
        [step("baseline", 0.90, 2.0), step("int8 (PTQ)", 0.902, 1.0)], artifacts, "onnxruntime", 1.0, True
    )
    assert "+0.20 points" in gained[0]
    slow = _verdict([step("baseline", 0.90, 2.0), step("int8 (PTQ)", 0.90, 1.9)], artifacts, "onnxruntime", 1.0, True)
    assert "does not pay" in slow[0] and slow[1]["precision"] == "f32"


def test_a_step_that_rounding_leaves_whole_is_not_judged() -> None:
    from cnnlab.compress.prune import prune_iteratively

    model = create_model("cifar_resnet20", num_classes=10, shortcut="B")  # 16/32/64 channels
    before = sum(p.numel() for p in model.parameters())

    def never(*args: object) -> float:
        raise AssertionError("a step that removed nothing was recovered or timed")

    history, reason = prune_iteratively(
        model,
        torch.randn(1, 3, 32, 32),
        ratio=0.2,
        steps=2,
        importance="magnitude",
        recover=never,
        latency=never,
        round_to=64,  # no layer can lose 10-20% and stay a multiple of 64
    )
    assert history == [] and "nothing pruned" in reason and "--channel-multiple" in reason
    assert sum(p.numel() for p in model.parameters()) == before


def test_quantization_aware_fine_tuning_keeps_the_state_dict(tmp_path: Path) -> None:
    model = create_model("cifar_resnet20", num_classes=10).eval()
    keys = list(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
    assert qat.enable(model) == 20  # 19 convolutions (option A shortcuts have none) and the classifier
    assert list(model.state_dict()) == keys
    with torch.no_grad():
        assert 0 < (model(x) - before).abs().max() < 0.5  # int8 rounding, not a different network
    qat.disable(model)
    with torch.no_grad():
        assert torch.equal(model(x), before)
    qat.enable(model)
    model.train()
    model(x).sum().backward()  # straight-through gradients reach the weights
    assert model.stem.conv.weight.grad is not None and model.stem.conv.weight.grad.abs().sum() > 0


def test_qat_runs_when_ptq_misses_the_budget(base: Path, tmp_path: Path) -> None:
    report = compress_run(base, quantize="int8", max_drop=0.0, qat_epochs=1, out=tmp_path / "qat", val_limit=300)
    details = json.loads((tmp_path / "qat" / "compression.json").read_text())["quantization"]
    if details["ptq"]["drop_points"] <= 0:  # post-training int8 met a zero drop: no fine-tune was needed
        assert "qat" not in details and report.steps[-1].name == "int8 (PTQ)"
        assert not (tmp_path / "qat" / "steps" / "qat").exists()
    else:
        assert "qat" in details and report.steps[-1].name == "int8 (QAT)"
        assert (tmp_path / "qat" / "steps" / "qat" / "metrics.csv").is_file()


def test_distillation_loss() -> None:
    from cnnlab.tasks import build_task
    from cnnlab.tasks.distill import DistillTask

    base_task = build_task("classify", num_classes=4)
    teacher = torch.nn.Linear(3, 4)
    logits, labels = torch.randn(8, 4), torch.randint(0, 4, (8,))
    hard_only = DistillTask(base_task, teacher, lambda x: x, temperature=2.0, alpha=0.0)
    targets = hard_only.prepare_targets(torch.randn(8, 3), labels)
    assert torch.allclose(hard_only.loss(logits, targets), base_task.loss(logits, labels))
    soft_only = DistillTask(base_task, teacher, lambda x: x, temperature=2.0, alpha=1.0)
    assert soft_only.loss(targets["teacher"].clone(), targets).item() == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ConfigError, match="distill-alpha"):
        DistillTask(base_task, teacher, lambda x: x, alpha=1.5)


def test_distillation_records_how_the_teacher_does_on_the_students_inputs(base: Path, tmp_path: Path) -> None:
    student = train_model(
        data="builtin:digits", model="lenet5", epochs=1, distill_from=str(base), out=tmp_path / "s", progress=False
    )
    record = json.loads((student.path / "run.json").read_text())["distillation"]
    teacher_val = json.loads((base / "run.json").read_text())["best_val"]
    assert record["teacher_val_top1"] == teacher_val
    # Same input size and split: the teacher sees what it saw in validation, so it scores the same.
    assert record["teacher_val_top1_on_student_inputs"] == pytest.approx(teacher_val, abs=0.02)
    assert "WARNING" not in record["note"] and record["note"] in student.plan.reasoning


def test_a_teacher_with_other_classes_is_refused(base: Path, tmp_path: Path) -> None:
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(12):
            Image.new("L", (8, 8), 40 * i if cls == "cat" else 255 - 10 * i).save(tmp_path / "data" / cls / f"{i}.png")
    other = train_model(data=str(tmp_path / "data"), model="lenet5", epochs=1, out=tmp_path / "other", progress=False)
    with pytest.raises(ConfigError, match="teacher"):
        compress_run(base, prune=0.5, distill_from=str(other.path), out=tmp_path / "x")
    with pytest.raises(ConfigError, match="teacher"):
        train_model(
            data="builtin:digits",
            model="lenet5",
            epochs=1,
            distill_from=str(other.path),
            out=tmp_path / "y",
            progress=False,
        )
    with pytest.raises(ConfigError, match="classes"):
        compress_run(base, quantize="int8", data=str(tmp_path / "data"), out=tmp_path / "z")


def test_calibration_images_of_another_size_and_mode_go_through_the_cards_pipeline(base: Path, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for digit in range(10):  # RGB, 40x40: the model takes 1-channel 32x32
        (tmp_path / "rgb" / str(digit)).mkdir(parents=True)
        for i in range(6):
            pixels = (rng.random((40, 40, 3)) * 255).astype("uint8")
            Image.fromarray(pixels).save(tmp_path / "rgb" / str(digit) / f"{i}.png")
    report = compress_run(base, quantize="int8", data=str(tmp_path / "rgb"), qat_epochs=0, out=tmp_path / "q")
    assert [s.name for s in report.steps] == ["baseline", "int8 (PTQ)"]
    assert all(0.0 <= s.val_top1 <= 1.0 for s in report.steps) and report.verdict


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "nothing to compress"),
        ({"prune": 1.5}, "between 0 and 1"),
        ({"prune": 0.0}, "between 0 and 1"),
        ({"quantize": "int4"}, "int8"),
        ({"quantize": "int8", "calibration": "kl"}, "--calibration 'kl'"),
        ({"quantize": "int8", "max_drop": -1}, "cannot be negative"),
        ({"quantize": "int8", "runtime": "tensorrt"}, "--runtime 'tensorrt'"),
        ({"prune": 0.5, "channel_multiple": 0}, "--channel-multiple 0"),
    ],
)
def test_bad_requests(base: Path, tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compress_run(base, out=tmp_path / "bad", **kwargs)
    assert not (tmp_path / "bad").exists()  # refused before any work


def test_compress_cli(base: Path, tmp_path: Path) -> None:
    from tests.conftest import run_cli

    result = run_cli(
        "compress", str(base), "--quantize", "int8", "--qat-epochs", "0", "--out", str(tmp_path / "c"), "--json"
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert [s["name"] for s in record["steps"]] == ["baseline", "int8 (PTQ)"] and record["verdict"]
    assert (tmp_path / "c" / "compression.json").is_file()
    missing = run_cli("compress", str(tmp_path / "nowhere"), "--quantize", "int8")
    assert missing.returncode == 2 and "nowhere" in missing.stderr and "Traceback" not in missing.stderr
    nothing = run_cli("compress", str(base))
    assert nothing.returncode == 2 and "nothing to compress" in nothing.stderr
