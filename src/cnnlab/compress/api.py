"""`compress_run`: a trained run -> a new run that is smaller or faster, with the accuracy it kept.

Steps, in this order, each optional: distillation from a teacher run, structured pruning with
recovery fine-tunes, int8 quantization (post-training, with sensitivity analysis; quantization-aware
fine-tuning when that is not enough). Every step is measured the same way (accuracy on the run's
validation and test splits, size on disk, parameters, MACs, latency on each runtime, alternating),
and the verdict says what to deploy, including when int8 does not pay on this CPU.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cnnlab.compress.evaluation import EvalSet, export_fp32, paired_latency_ms, runtime_callables
from cnnlab.compress.prune import (
    IMPORTANCES,
    check_channel_multiple,
    check_ratio,
    cpu_channel_multiple,
    prune_iteratively,
)
from cnnlab.compress.quantize import CALIBRATIONS, Quantizer, quantize_within_budget
from cnnlab.compress.report import StepRecord, plot
from cnnlab.env import hardware, versions
from cnnlab.errors import ConfigError
from cnnlab.profile.counting import count_macs, count_params
from cnnlab.profile.latency import alternating_medians
from cnnlab.runs import RunDir, load_run, save_model
from cnnlab.runtime.artifact_card import write_sidecar

INT8_PAYS = 1.1  # int8 must be at least this much faster than fp32 to be recommended


@dataclass
class CompressionReport:
    path: Path
    steps: list[StepRecord]
    verdict: str
    recommended: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": str(self.path),
            "steps": [s.to_dict() for s in self.steps],
            "verdict": self.verdict,
            "recommended": self.recommended,
            **self.details,
        }


def _validate(
    quantize: str | None,
    prune: float | None,
    distill_from: str | None,
    calibration: str,
    importance: str,
    max_drop: float,
    multiple: int | None,
) -> None:
    if not (quantize or prune is not None or distill_from):
        raise ConfigError("nothing to compress: give --quantize int8, --prune RATIO and/or --distill-from RUN")
    if quantize not in (None, "int8"):
        raise ConfigError(f"--quantize {quantize!r}: cnnlab quantizes to int8")
    if prune is not None:
        check_ratio(prune)
    if calibration not in CALIBRATIONS:
        raise ConfigError(f"--calibration {calibration!r}: choose one of {', '.join(CALIBRATIONS)}")
    if importance not in IMPORTANCES:
        raise ConfigError(f"--importance {importance!r}: choose one of {', '.join(IMPORTANCES)}")
    check_channel_multiple(multiple)
    if max_drop < 0:
        raise ConfigError(f"--max-drop is in accuracy points and cannot be negative, got {max_drop}")


def compress_run(
    run: str | Path,
    *,
    quantize: str | None = None,
    prune: float | None = None,
    distill_from: str | None = None,
    max_drop: float = 1.0,
    out: str | Path | None = None,
    overwrite: bool = False,
    calibration: str = "minmax",
    calibration_images: int = 256,
    runtime: str = "onnxruntime",
    recover_epochs: int = 2,
    recover_min_steps: int = 300,
    prune_steps: int = 4,
    importance: str = "magnitude",
    channel_multiple: int | None = None,
    qat_epochs: int = 2,
    val_limit: int | None = 2000,
    data: str | None = None,
    progress: bool | None = False,
) -> CompressionReport:
    """Compress the model of ``run`` into a new run (default runs/compress-<n>).

    Args:
        max_drop: the largest top-1 loss accepted, in points, measured on the validation split.
        runtime: where latency decides (pruning steps, int8 verdict): onnxruntime or openvino.
        recover_epochs: fine-tuning epochs after each pruning step (and for distillation alone), raised
            to at least ``recover_min_steps`` optimizer steps: on a small dataset one epoch is a few
            steps, too few to recover from a pruning step (digits: 12% -> 46% in 19 steps, 100% in 300).
        channel_multiple: pruned layers keep a multiple of this many channels; default this CPU's
            vector block (16 on AVX-512, 8 otherwise). Set it for the deployment target's CPU.
        qat_epochs: quantization-aware fine-tuning when post-training int8 misses ``max_drop`` (0: never).
        data: calibrate and evaluate on this data instead of the run's own (same classes).
    """
    _validate(quantize, prune, distill_from, calibration, importance, max_drop, channel_multiple)
    if runtime not in ("onnxruntime", "openvino"):
        raise ConfigError(f"--runtime {runtime!r}: compression measures onnxruntime or openvino")
    from cnnlab.data import open_dataset
    from cnnlab.train import TrainConfig, train_model

    base = load_run(run)
    record = RunDir(base.path).read_json("run.json")
    spec = record.get("data") or {}
    if not spec.get("source") or "config" not in record:
        raise ConfigError(
            f"{base.path} does not record its data and training config; compression needs both to "
            "calibrate and to fine-tune (train it with `cnnlab train`)"
        )
    if distill_from:
        teacher_card = load_run(distill_from).card
        if list(teacher_card.class_names or []) != list(base.card.class_names or []):
            raise ConfigError(
                f"--distill-from {distill_from}: the teacher was trained on other classes "
                f"({(teacher_card.class_names or [])[:4]}…) than {base.path} ({(base.card.class_names or [])[:4]}…)"
            )
    bundle = open_dataset(
        data or spec["source"],
        seed=spec.get("seed", 0),
        val_fraction=spec.get("val_fraction", 0.1),
        test_fraction=spec.get("test_fraction", 0.2),
    )
    if list(bundle.class_names) != list(base.card.class_names or bundle.class_names):
        raise ConfigError(
            f"--data {data}: its classes ({bundle.class_names[:4]}…) are not the ones {base.path} was "
            f"trained on ({(base.card.class_names or [])[:4]}…); calibration and the accuracy check need "
            "images of the model's own classes"
        )
    target = RunDir.create(out, "compress", overwrite=overwrite)
    exports = target.path / "export"
    exports.mkdir()
    model, card = copy.deepcopy(base.model).eval(), copy.deepcopy(base.card)
    val = EvalSet(bundle, card, "val" if len(bundle.splits["val"]) else "train", limit=val_limit)
    test = EvalSet(bundle, card, "test")
    example = torch.randn(1, *card.input_size)
    base_config = TrainConfig.from_dict(record["config"])
    steps_per_epoch = max(1, len(bundle.splits["train"]) // base_config.batch_size)
    recover_epochs = max(recover_epochs, -(-recover_min_steps // steps_per_epoch))

    def finetune(name: str, epochs: int, teacher: str | None) -> float:
        config = dataclasses.replace(
            base_config,
            recipe="recover",
            epochs=epochs,
            budget_s=None,
            pretrained=False,
            distill_from=teacher,  # the data stays the base run's: a few-shot run recovers on its own subset
            early_stop=None,
            ema=False,
        )
        result = train_model(config, out=target.path / "steps" / name, initial=(model, card), progress=progress)
        return float(result.state.history[-1].get("val_top1") or 0.0)

    baseline_onnx = export_fp32(model, card, exports / "baseline")
    steps = [_measure("baseline", model, val, test, base.path / "model.safetensors")]
    details: dict[str, Any] = {"base_run": str(base.path), "max_drop": max_drop, "runtime": runtime}
    artifacts: dict[str, Path] = {"baseline": baseline_onnx}

    if distill_from and not prune:
        finetune("distill", recover_epochs, distill_from)
        steps.append(_measure("distilled", model, val, test, None))
    if prune:
        card.shapes_from_weights = True
        multiple = channel_multiple or cpu_channel_multiple()
        history, reason = prune_iteratively(
            model,
            example,
            ratio=prune,
            steps=prune_steps,
            importance=importance,
            recover=lambda m, k: finetune(f"prune-{k}", recover_epochs, distill_from),
            latency=lambda before, after: paired_latency_ms(before, after, card, runtime),
            gradients=lambda m: _taylor_gradients(m, val),
            round_to=multiple,
        )
        details["pruning"] = {
            "steps": [h.to_dict() for h in history],
            "stopped": reason,
            "importance": importance,
            "channel_multiple": multiple,
        }
        steps.append(_measure(f"pruned {prune:.0%}" + (" + KD" if distill_from else ""), model, val, test, None))
    save_model(model, card, target.path)
    float_onnx = export_fp32(model, card, exports)
    write_sidecar(float_onnx, card)
    artifacts[steps[-1].name] = float_onnx
    steps[-1].size_bytes = (target.path / "model.safetensors").stat().st_size
    if quantize:
        if runtime == "openvino":
            int8_path, int8_record, note = _quantize_openvino(
                float_onnx, exports, val, test, card, calibration_images, max_drop
            )
        else:
            int8_path, int8_record, note = _quantize(
                model,
                card,
                float_onnx,
                exports,
                val,
                test,
                calibration,
                calibration_images,
                max_drop,
                qat_epochs,
                finetune,
                save_to=target,
            )
        steps.append(int8_record)
        artifacts[int8_record.name] = int8_path
        details["quantization"] = {
            "calibration": calibration if runtime != "openvino" else "nncf (minmax)",
            "calibration_images": calibration_images,
            "per_channel": True,
            "format": "QDQ" if runtime != "openvino" else "OpenVINO IR (FakeQuantize)",
            **note,
        }
    _latencies(steps, artifacts, card)
    verdict, recommended = _verdict(steps, artifacts, runtime, max_drop, bool(quantize))
    _write_recommendation(exports, recommended)
    report = CompressionReport(target.path, steps, verdict, recommended, details)
    target.write_json("compression.json", report.to_dict())
    plot(steps, runtime, target.file("compression.png"))
    target.update_run_json(
        command="compress",
        base_run=str(base.path),
        data=spec,
        config=record["config"],
        options=dict(
            quantize=quantize,
            prune=prune,
            distill_from=distill_from,
            max_drop=max_drop,
            calibration=calibration,
            runtime=runtime,
            recover_epochs=recover_epochs,
            prune_steps=prune_steps,
            importance=importance,
            channel_multiple=channel_multiple,
            qat_epochs=qat_epochs,
            recover_min_steps=recover_min_steps,
        ),
        verdict=verdict,
        recommended=recommended,
        versions=versions(),
        hardware=hardware(),
        status="completed",
    )
    return report


def _measure(name: str, model: torch.nn.Module, val: EvalSet, test: EvalSet, weights: Path | None) -> StepRecord:
    example = torch.zeros(1, *val.batches[0][0].shape[1:])
    size = (
        weights.stat().st_size
        if weights is not None and weights.is_file()
        else sum(t.numel() * t.element_size() for t in model.state_dict().values())
    )
    return StepRecord(
        name,
        val.torch_top1(model),
        test.torch_top1(model),
        count_params(model).total,
        count_macs(model, example)[0],
        size,
    )


def _taylor_gradients(model: torch.nn.Module, val: EvalSet, batches: int = 4) -> None:
    model.train()
    for x, y in val.batches[:batches]:
        val.task.loss(model(x), y).backward()
    model.eval()


def _quantize(
    model: torch.nn.Module,
    card: Any,
    float_onnx: Path,
    exports: Path,
    val: EvalSet,
    test: EvalSet,
    calibration: str,
    calibration_images: int,
    max_drop: float,
    qat_epochs: int,
    finetune: Any,
    save_to: RunDir,
) -> tuple[Path, StepRecord, dict[str, Any]]:
    from cnnlab.compress import qat

    int8_path = exports / "model.int8.onnx"
    float_val = val.onnx_top1(float_onnx)
    with Quantizer(float_onnx, val.numpy_batches(calibration_images), method=calibration) as quantizer:
        ptq = quantize_within_budget(quantizer, val.onnx_top1, float_val, max_drop / 100, int8_path)
    note: dict[str, Any] = {
        "ptq": {
            "val_top1": ptq.accuracy,
            "drop_points": 100 * ptq.drop,
            "attempts": ptq.attempts,
            "sensitivity": [s.to_dict() for s in ptq.sensitivity],
        }
    }
    name = "int8 (PTQ)"
    if not ptq.within_budget and qat_epochs > 0:
        qat.enable(model)
        try:
            finetune("qat", qat_epochs, None)
        finally:
            qat.disable(model)
        save_model(model, card, save_to.path)
        float_onnx = export_fp32(model, card, exports)
        float_val = val.onnx_top1(float_onnx)
        with Quantizer(float_onnx, val.numpy_batches(calibration_images), method=calibration) as quantizer:
            ptq = quantize_within_budget(quantizer, val.onnx_top1, float_val, max_drop / 100, int8_path)
        note["qat"] = {"epochs": qat_epochs, "val_top1": ptq.accuracy, "drop_points": 100 * ptq.drop}
        name = "int8 (QAT)"
    write_sidecar(int8_path, card)
    record = StepRecord(
        name,
        ptq.accuracy,
        test.onnx_top1(int8_path),
        None,
        None,
        int8_path.stat().st_size,
        float_layers=ptq.float_groups,
        note="" if ptq.within_budget else f"misses --max-drop {max_drop} on validation",
    )
    note["within_budget"] = ptq.within_budget
    return int8_path, record, note


def _quantize_openvino(
    float_onnx: Path, exports: Path, val: EvalSet, test: EvalSet, card: Any, calibration_images: int, max_drop: float
) -> tuple[Path, StepRecord, dict[str, Any]]:
    import openvino as ov

    from cnnlab.compress.openvino_int8 import compiled_top1, quantize_for_openvino

    baseline = compiled_top1(
        ov.compile_model(str(float_onnx), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}), val.labelled_numpy()
    )
    result = quantize_for_openvino(
        float_onnx,
        val.numpy_batches(calibration_images),
        val.labelled_numpy(),
        compiled_top1,
        baseline,
        max_drop / 100,
        exports / "model.int8.xml",
    )
    write_sidecar(result.path, card)
    test_top1 = compiled_top1(ov.compile_model(str(result.path), "CPU"), test.labelled_numpy())
    size = result.path.stat().st_size + result.path.with_suffix(".bin").stat().st_size
    float_note = [{"group": f"{result.float_ops} quantizer(s)", "why": "returned to float by NNCF accuracy control"}]
    record = StepRecord(
        "int8 (NNCF)",
        result.accuracy,
        test_top1,
        None,
        None,
        size,
        float_layers=float_note if result.float_ops else [],
        note="" if result.within_budget else f"misses --max-drop {max_drop} on validation",
    )
    note = {
        "nncf": {"val_top1": result.accuracy, "drop_points": 100 * result.drop, "attempts": result.attempts},
        "within_budget": result.within_budget,
    }
    return result.path, record, note


def _latencies(steps: list[StepRecord], artifacts: dict[str, Path], card: Any) -> None:
    """Batch-1 latency of every step's artifact on every runtime, in one alternating measurement."""
    single = torch.randn(1, *card.input_size)
    runners: dict[tuple[str, str], Any] = {}
    for name, path in artifacts.items():
        for runtime, fn in runtime_callables(path, card, single).items():
            runners[(name, runtime)] = fn
    medians = alternating_medians({f"{n}|{r}": fn for (n, r), fn in runners.items()}, rounds=10, runs=5)
    for step in steps:
        for key, stats in medians.items():
            name, runtime = key.split("|")
            if name == step.name:
                step.latency_ms[runtime] = round(stats.median_ms, 4)


def _verdict(
    steps: list[StepRecord], artifacts: dict[str, Path], runtime: str, max_drop: float, quantized: bool
) -> tuple[str, dict[str, Any]]:
    base = steps[0]
    float_step = steps[-2] if quantized else steps[-1]
    lines = []
    chosen = float_step
    if float_step is not base:
        lines.append(_compare(float_step, base, runtime))
    if quantized:
        int8 = steps[-1]
        speedup = float_step.latency_ms.get(runtime, 0) / max(int8.latency_ms.get(runtime, float("inf")), 1e-9)
        drop = 100 * (float_step.val_top1 - int8.val_top1)
        if drop > max_drop:
            lines.append(f"int8 loses {drop:.2f} points on validation (more than --max-drop {max_drop}): keeping float")
        elif speedup < INT8_PAYS:
            lines.append(
                f"int8 does not pay on this CPU for this model: {int8.latency_ms.get(runtime, 0):.2f} ms vs "
                f"{float_step.latency_ms.get(runtime, 0):.2f} ms in float ({speedup:.2f}x); keeping float"
            )
        else:
            chosen = int8
            lines.append(
                f"int8: {speedup:.2f}x faster than float on {runtime}, {-drop:+.2f} points on validation "
                f"(within --max-drop {max_drop})"
                + (f", {len(int8.float_layers)} layer group(s) kept float" if int8.float_layers else "")
            )
    recommended = {
        "step": chosen.name,
        "artifact": artifacts[chosen.name].name,
        "runtime": runtime,
        "precision": "int8" if chosen.name.startswith("int8") else "f32",
        "latency_ms": chosen.latency_ms.get(runtime),
        "test_top1": chosen.test_top1,
    }
    return "; ".join(lines), recommended


def _compare(step: StepRecord, base: StepRecord, runtime: str) -> str:
    speedup = base.latency_ms.get(runtime, 0) / max(step.latency_ms.get(runtime, float("inf")), 1e-9)
    return (
        f"{step.name}: {speedup:.2f}x faster on {runtime}, {100 * (step.test_top1 - base.test_top1):+.2f} points "
        f"on test, {step.params / max(base.params, 1):.0%} of the parameters"
    )


def _write_recommendation(exports: Path, recommended: dict[str, Any]) -> None:
    """What `load_predictor(RUN)` should run: the same file the export step writes."""
    from cnnlab.runs.atomic import atomic_write_json

    atomic_write_json(
        exports / "parity.json",
        {
            "passed": True,
            "recommended_runtime": recommended["runtime"],
            "recommended_precision": "f32",
            "recommended_artifact": recommended["artifact"],
            "note": "written by cnnlab compress: accuracy is checked against --max-drop, see ../compression.json",
        },
    )
