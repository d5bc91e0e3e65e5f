"""`cnnlab compare`: several architectures, one recipe and one budget each, one report.

Each model is trained on the same data with the same recipe, seed and epochs (or time budget), then
exported with parity (which also times every verified runtime), profiled (params, MACs, size) and
given a page of Grad-CAM samples; existing run directories join as they are. The report puts them
side by side: accuracy, per-class F1, latency per runtime, size, params, MACs, training time,
learning curves, confusion matrices and Grad-CAM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.env import hardware, versions
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.runs import RunDir

COMPARE_FILE = "compare.json"


@dataclass
class ComparisonReport:
    path: Path
    rows: list[dict[str, Any]]
    report: Path
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"run": str(self.path), "rows": self.rows, "report": str(self.report), "notes": self.notes}


def _slug(target: str) -> str:
    return target.replace("\\", "/").rstrip("/").split("/")[-1].rsplit(".", 1)[0] or "model"


def _is_run(target: str) -> bool:
    return (Path(target) / "run.json").is_file()


def _row(run_path: Path, profile: dict[str, Any]) -> dict[str, Any]:
    record = RunDir(run_path).read_json("run.json")
    test = record.get("test") or {}
    parity = RunDir(run_path / "export").read_json("parity.json") if (run_path / "export").is_dir() else {}
    latency = {
        c["runtime"] + ("" if c.get("precision", "f32") == "f32" else f" {c['precision']}"): round(c["median_ms"], 4)
        for c in parity.get("runtime_candidates", [])
        if c.get("accepted", c.get("passed")) and c.get("median_ms")
    }
    size = profile.get("size_bytes")
    return {
        "name": run_path.name,
        "run": str(run_path),
        "architecture": (record.get("config") or {}).get("model"),
        "test_top1": test.get("top1"),
        "macro_f1": test.get("macro_f1"),
        "params": profile.get("params"),
        "macs": profile.get("macs"),
        "size_bytes": size.get("fp32") if isinstance(size, dict) else size,
        "latency_ms": latency,
        "train_s": record.get("elapsed_s"),
        "epochs": record.get("epochs"),
    }


def compare_models(
    targets: list[str],
    data: str,
    *,
    epochs: int | None = None,
    budget_s: float | None = None,
    recipe: str = "auto",
    formats: str = "onnx",
    cam_samples: int = 8,
    out: str | Path | None = None,
    overwrite: bool = False,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> ComparisonReport:
    """Train every model of ``targets`` (registry names or design specs; run directories are taken as
    they are) on ``data`` with one recipe and budget, measure them alike, and write OUT/report.html."""
    from cnnlab.explain.samples import cam_samples_png
    from cnnlab.export import export_run
    from cnnlab.profile import profile_model
    from cnnlab.report import write_report
    from cnnlab.train import TrainConfig, train_model

    say = log or (lambda _: None)
    if len(targets) < 2:
        raise ConfigError(
            "compare needs at least two models or runs, e.g. cnnlab compare lenet5 cifar_resnet20 --data ..."
        )
    slugs = [_slug(t) for t in targets]
    if len(set(slugs)) != len(slugs):
        raise ConfigError(f"compare: {', '.join(targets)} name the same model twice")
    from cnnlab.registry import get_entry, is_spec_path

    for target in targets:  # every name checked before the first model trains
        if _is_run(target):
            continue
        if is_spec_path(target):
            if not Path(target).is_file():
                raise ConfigError(f"{target}: no such design spec file")
        else:
            get_entry(target)
    if epochs is None and budget_s is None:
        epochs = 10
    TrainConfig(data=data, model=targets[0], epochs=epochs, budget_s=budget_s, recipe=recipe)  # fail early
    run = RunDir.create(out, "compare", overwrite=overwrite)
    run.update_run_json(
        command="compare",
        data={"source": data, "seed": seed},
        options={"targets": targets, "epochs": epochs, "budget_s": budget_s, "recipe": recipe, "formats": formats},
        versions=versions(),
        hardware=hardware(),
        status="running",
    )
    rows, notes, runs = [], [], []
    for i, (target, slug) in enumerate(zip(targets, slugs, strict=True), 1):
        if _is_run(target):
            run_path = Path(target)
            say(f"[{i}/{len(targets)}] {target}: an existing run, taken as it is")
        else:
            say(f"[{i}/{len(targets)}] training {target}")
            config = TrainConfig(data=data, model=target, epochs=epochs, budget_s=budget_s, recipe=recipe, seed=seed)
            run_path = train_model(config, out=run.path / slug, overwrite=True, progress=False).path
        try:
            export_run(run_path, formats)
        except CnnlabError as exc:
            notes.append(f"{slug}: {exc}")
        profile = profile_model(str(run_path), latency=False).to_dict()
        RunDir(run_path).write_json("profile.json", profile)
        if cam_samples:
            try:
                cam_samples_png(run_path, cam_samples)
            except CnnlabError as exc:
                notes.append(f"{slug}: no Grad-CAM samples ({exc})")
        rows.append(_row(run_path, profile))
        runs.append(run_path)
    report = write_report(runs, out=run.path / "report.html", title=f"cnnlab compare on {data}: " + ", ".join(slugs))
    result = ComparisonReport(run.path, rows, report, notes)
    run.write_json(COMPARE_FILE, result.to_dict())
    run.update_run_json(status="completed", rows=rows, notes=notes)
    return result
