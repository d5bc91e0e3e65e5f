"""`export_run`: a trained run -> artifacts in its export/ folder, each with a parity verdict."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cnnlab.env import versions
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.export.formats import DEFAULT_OPSET, FORMATS, ExportContext, export_format
from cnnlab.export.parity import ParityResult, check_parity
from cnnlab.runs import RunDir, load_run
from cnnlab.runs.atomic import atomic_write_json
from cnnlab.runtime.backends import artifact_predictor

PARITY_FILE = "parity.json"


class ExportError(CnnlabError):
    """An export failed, or an artifact disagrees with the trained model beyond the tolerance."""


@dataclass
class ExportReport:
    path: Path
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    parity: dict[str, ParityResult] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    recommended_runtime: str | None = None
    recommended_precision: str = "f32"
    runtime_candidates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def latency_ms(self) -> dict[str, float]:
        return {
            (c["runtime"] if c["precision"] == "f32" else f"{c['runtime']} ({c['precision']})"): c["median_ms"]
            for c in self.runtime_candidates
            if c.get("accepted", c["passed"]) and c["median_ms"] is not None
        }

    @property
    def passed(self) -> bool:
        return not self.failures and all(p.passed for p in self.parity.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "export_dir": str(self.path),
            "passed": self.passed,
            "artifacts": {k: {**v, "path": str(v["path"])} for k, v in self.artifacts.items()},
            "parity": {k: v.to_dict() for k, v in self.parity.items()},
            "failures": self.failures,
            "recommended_runtime": self.recommended_runtime,
            "recommended_precision": self.recommended_precision,
            "runtime_candidates": self.runtime_candidates,
            "versions": versions(),
        }


def parse_formats(formats: str | Sequence[str]) -> list[str]:
    names = [f.strip() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    if names == ["all"]:
        names = list(FORMATS)
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ConfigError(f"--format {','.join(unknown) or '(none)'}: choose from {', '.join(FORMATS)} or all")
    return names


def parity_batch(run_path: Path, card: Any, samples: int, seed: int = 0) -> tuple[torch.Tensor, str]:
    """Pre-processed real images from the run's test split, or random inputs when there is no data."""
    from cnnlab.runtime.preprocess import Preprocessor

    record = RunDir(run_path).read_json("run.json")
    spec = record.get("data") or {}
    source = spec.get("source")
    if source:
        try:
            from cnnlab.data import open_dataset

            bundle = open_dataset(
                source,
                seed=spec.get("seed", 0),
                val_fraction=spec.get("val_fraction", 0.1),
                test_fraction=spec.get("test_fraction", 0.2),
                task=card.task,
            )
            split = bundle.splits["test"] if len(bundle.splits["test"]) else bundle.splits["train"]
            preprocess = Preprocessor(card)
            count = min(samples, len(split))
            step = max(1, len(split) // count)
            images = [preprocess.image(split[i][0]) for i in range(0, step * count, step)]
            if card.task == "segment":  # whole images may differ in size: the training window of each
                from cnnlab.runtime.preprocess import fit_to

                images = [fit_to(image, card.input_size[1:]) for image in images]
            return torch.stack(images), f"{count} images from the test split of {source}"
        except CnnlabError:
            pass  # the data moved or is gone: still check parity, on random inputs, and say so
    g = torch.Generator().manual_seed(seed)
    return torch.randn(samples, *card.input_size, generator=g), f"{samples} random inputs (no run data available)"


def _check_precision(precision: str, formats: Sequence[str]) -> None:
    from cnnlab.export.runtime_choice import PRECISIONS

    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r}: choose auto, f32 or bf16")
    if precision == "bf16" and "openvino" not in formats:
        raise ConfigError("--precision bf16 serves OpenVINO in bf16: add openvino to --format (e.g. onnx,openvino)")


def export_run(
    run: str | Path,
    formats: str | Sequence[str] = "onnx",
    *,
    opset: int = DEFAULT_OPSET,
    samples: int = 32,
    rtol: float = 1e-3,
    data: str | None = None,
    bisect: bool = True,
    pick_runtime: bool = True,
    precision: str = "auto",
) -> ExportReport:
    """Export a run's model to ``formats`` under ``RUN/export``, check parity for each, pick the fastest.

    Raises ExportError after writing export/parity.json when a format failed or disagrees.
    """
    names = parse_formats(formats)
    _check_precision(precision, names)
    loaded = load_run(run)
    model, card = loaded.model.eval(), loaded.card
    out = loaded.path / "export"
    out.mkdir(exist_ok=True)
    batch, data_note = parity_batch(loaded.path, card, samples)
    report = ExportReport(out)
    ctx = ExportContext(model, card, batch[:2].clone(), out, opset)
    for name in names:
        fmt = FORMATS[name]
        try:
            details = export_format(fmt, ctx)
            predictor = artifact_predictor(details["path"], card)
            result = check_parity(model, predictor, batch, fmt=name, data=data_note, rtol=rtol)
        except CnnlabError as exc:
            report.failures[name] = str(exc)
            continue
        except Exception as exc:
            from cnnlab.export.preflight import blocking_ops, clean_message

            ops = blocking_ops(str(exc))
            report.failures[name] = (
                f"unsupported op(s) for {name}: {', '.join(ops)}"
                if ops
                else f"{name} export failed: {clean_message(str(exc)).splitlines()[0][:300]}"
            )
            continue
        if data:
            result.metric_delta = _metric_delta(model, predictor, card, data)
        if not result.passed and bisect and ctx.onnx_path is not None:
            from cnnlab.export.bisect import first_divergence

            result.first_divergence = first_divergence(model, ctx.onnx_path, batch[:8], rtol)
        report.artifacts[name] = {**details, "runtime": fmt.runtime}
        report.parity[name] = result
    if pick_runtime and report.artifacts:
        from cnnlab.export.runtime_choice import choose_runtime

        passing = {n: Path(info["path"]) for n, info in report.artifacts.items() if report.parity[n].passed}
        candidates, best = choose_runtime(model, card, passing, batch, rtol, precision=precision)
        report.runtime_candidates = [c.to_dict() for c in candidates]
        report.recommended_runtime, report.recommended_precision = best.runtime, best.precision
    atomic_write_json(out / PARITY_FILE, report.to_dict())
    if not report.passed:
        raise ExportError(_failure_message(report, out))
    return report


def _metric_delta(model: Any, predictor: Any, card: Any, data: str) -> dict[str, Any]:
    from cnnlab.data import open_dataset
    from cnnlab.export.parity import metric_delta
    from cnnlab.tasks import task_for_card
    from cnnlab.train.prepare import evaluation_batches

    bundle = open_dataset(data, task=card.task)
    task = task_for_card(card)
    memory = bundle.native_size is not None and max(bundle.native_size) <= 64
    batches = evaluation_batches(card, bundle.splits["test"], batch_size=64, memory=memory)
    return metric_delta(model, predictor, batches(), task)


def _failure_message(report: ExportReport, out: Path) -> str:
    parts = [f"{name}: {reason}" for name, reason in report.failures.items()]
    for name, p in report.parity.items():
        if not p.passed:
            where = ""
            if p.first_divergence and p.first_divergence.get("module"):
                d = p.first_divergence
                where = f"; first diverging layer: {d['module']} ({d['type']}, max diff {d['max_abs_diff']:.3g})"
            parts.append(
                f"{name}: outputs differ from the trained model by up to {p.max_abs_diff:.3g} "
                f"(tolerance {p.tolerance:.3g}), top-1 agreement {p.top1_agreement:.1%}{where}"
            )
    return "export failed — " + "; ".join(parts) + f" (details in {out / PARITY_FILE})"


def export_model(name: str, formats: str | Sequence[str], out: Path | None = None, **kwargs: Any) -> ExportReport:
    """Export a registry model with its default input (random weights unless the run is trained):
    a throwaway run directory is made for it, in ``out`` or a temporary folder."""
    from cnnlab.registry import create_model, get_entry
    from cnnlab.runs import ModelCard, save_model

    entry = get_entry(name)
    target = Path(out) if out else Path(tempfile.mkdtemp(prefix="cnnlab-export-"))
    model = create_model(name).eval()
    card = ModelCard(
        architecture=name,
        num_classes=entry.num_classes,
        in_chans=entry.input_size[0],
        input_size=list(entry.input_size),
        mean=list(entry.mean),
        std=list(entry.std),
    )
    save_model(model, card, target)
    try:
        return export_run(target, formats, **kwargs)
    finally:
        if out is None:
            shutil.rmtree(target, ignore_errors=True)
