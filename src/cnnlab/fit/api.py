"""`cnnlab fit`, the main job: data and a deployment budget in, a verified deployable model and a
report out. select -> train the winner -> compress within --max-drop -> export with parity -> report,
all in one run directory:

    OUT/select/       the selection (select.json, pareto.png, one run per proxy training)
    OUT/train/        the winner, trained with the auto recipe; export/ holds the parity-checked ONNX
    OUT/compress/     int8 (kept only when it pays and stays within --max-drop)
    OUT/deploy/       the artifact to ship, with its card
    OUT/fit.json      what was promised and what the deployed model measures; OUT/report.html
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.env import hardware, versions
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.runs import RunDir

FIT_FILE = "fit.json"
SELECT_SHARE = 0.5  # of the budget; training gets most of what is left, compression and export the rest
TRAIN_SHARE_OF_REST = 0.75
MAX_FINAL_EPOCHS = 100
PROMISE_TOLERANCE = 0.10  # the deployed latency may exceed the promise by at most this much


@dataclass
class FitReport:
    path: Path
    recommended: dict[str, Any]
    test_top1: float | None
    deployed: dict[str, Any]
    promise: dict[str, Any]
    stages_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": str(self.path),
            "recommended": self.recommended,
            "test_top1": self.test_top1,
            "deployed": self.deployed,
            "promise": self.promise,
            "stages_s": self.stages_s,
            "notes": self.notes,
        }


def _check_promise(
    deployed: Path, card: Any, architecture: str, runtime: str, promised_ms: float, limit_ms: float | None
) -> dict[str, Any]:
    """Time the deployed artifact on the runtime selection promised, alternating with a fresh export of
    the untrained architecture (what stage 1 timed): the pair tells a slower model from a busier machine.
    Both are timed in a new process, as a deployment would run them, not in the one that just trained."""
    import tempfile

    from cnnlab.compress.evaluation import export_fp32
    from cnnlab.registry import create_model
    from cnnlab.select.measure import paired_latency_in_fresh_process

    with tempfile.TemporaryDirectory(prefix="cnnlab-promise-") as folder:
        reference = create_model(architecture, num_classes=card.num_classes, in_chans=card.in_chans).eval()
        reference_path = export_fp32(reference, card, Path(folder))
        timed = paired_latency_in_fresh_process(
            {"deployed": deployed, "reference": reference_path}, card, [runtime], rounds=10
        )[runtime]
    ratio = timed["deployed"] / promised_ms if promised_ms else float("inf")
    return {
        "runtime": runtime,
        "promised_ms": round(promised_ms, 4),
        "measured_ms": timed["deployed"],
        "reference_ms": timed["reference"],  # the architecture as selection timed it, measured now
        "ratio": round(ratio, 3),
        "machine_drift": round(timed["reference"] / promised_ms, 3) if promised_ms else None,
        "kept": ratio <= 1 + PROMISE_TOLERANCE,
        "within_budget": limit_ms is None or timed["deployed"] <= limit_ms,
    }


def fit_data(
    data: str,
    *,
    max_latency: str | float | None = None,
    max_size: str | float | None = None,
    max_memory: str | float | None = None,
    runtime: str = "auto",
    budget_s: float = 3600.0,
    max_drop: float = 1.0,
    quantize: bool = True,
    candidates: list[str] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> FitReport:
    """Select, train, compress, export and report, within ``budget_s`` seconds (roughly: selection takes
    half, the final training most of the rest; compression and export are not time-boxed)."""
    from cnnlab.compress import compress_run
    from cnnlab.export import export_run
    from cnnlab.report import write_report
    from cnnlab.runs import load_run
    from cnnlab.select import select_architecture
    from cnnlab.select.budget import parse_latency_ms
    from cnnlab.train import TrainConfig, train_model

    say = log or (lambda _: None)
    if budget_s <= 0:
        raise ConfigError(f"--budget must be positive, got {budget_s}s")
    if max_drop < 0:
        raise ConfigError(f"--max-drop is in accuracy points and cannot be negative, got {max_drop}")
    limit_ms = parse_latency_ms(max_latency)
    started = time.monotonic()
    run = RunDir.create(out, "fit", overwrite=overwrite)
    run.update_run_json(
        command="fit",
        data={"source": data, "seed": seed},
        options={
            "max_latency": max_latency,
            "max_size": max_size,
            "max_memory": max_memory,
            "runtime": runtime,
            "budget_s": budget_s,
            "max_drop": max_drop,
            "quantize": quantize,
            "candidates": candidates,
        },
        versions=versions(),
        hardware=hardware(),
        status="running",
    )
    stages: dict[str, float] = {}
    notes: list[str] = []

    def stage_done(name: str, since: float) -> float:
        stages[name] = round(time.monotonic() - since, 1)
        return time.monotonic()

    say(f"1/4 select ({SELECT_SHARE * budget_s:.0f}s)")
    try:
        selection = select_architecture(
            data,
            max_latency=max_latency,
            max_size=max_size,
            max_memory=max_memory,
            runtime=runtime,
            budget_s=SELECT_SHARE * budget_s,
            candidates=candidates,
            out=run.path / "select",
            overwrite=True,
            seed=seed,
            log=say,
        )
    except CnnlabError as exc:
        run.update_run_json(status="failed", failed_at="select", error=str(exc))
        raise
    for line in selection.rationale[:2]:
        say(f"   {line}")
    now = stage_done("select", started)

    train_s = max(30.0, TRAIN_SHARE_OF_REST * (budget_s - (now - started)))
    say(f"2/4 train {selection.recommended} (~{train_s:.0f}s, auto recipe)")
    # Time-driven (cosine over the time), capped in epochs so a tiny dataset does not loop for minutes.
    trained = train_model(
        TrainConfig(
            data=data,
            model=selection.model,
            epochs=MAX_FINAL_EPOCHS,
            budget_s=train_s,
            seed=seed,
            input_size=list(selection.input_size[1:]),
        ),
        out=run.path / "train",
        overwrite=True,
        progress=False,
    )
    test_top1 = trained.metrics.get("top1")
    now = stage_done("train", now)

    say("3/4 export with parity" + (" and int8 within --max-drop" if quantize else ""))
    formats = ["onnx", "openvino"] if selection.runtime == "openvino" else ["onnx"]
    exported = export_run(trained.path, formats)
    card = load_run(trained.path).card
    float_onnx = Path(exported.artifacts["onnx"]["path"])
    deployed = {"artifact": str(float_onnx), "runtime": selection.runtime, "precision": "f32", "test_top1": test_top1}
    if quantize:
        try:
            compressed = compress_run(
                trained.path,
                quantize="int8",
                max_drop=max_drop,
                runtime=selection.runtime,
                out=run.path / "compress",
                overwrite=True,
                progress=False,
            )
            chosen = compressed.recommended
            if chosen["precision"] == "int8":
                deployed = {
                    "artifact": str(compressed.path / "export" / chosen["artifact"]),
                    "runtime": chosen["runtime"],
                    "precision": "int8",
                    "test_top1": chosen["test_top1"],
                    "latency_ms": chosen["latency_ms"],
                }
            notes.append(compressed.verdict)
        except CnnlabError as exc:  # float is still deployable: say why int8 is missing, keep going
            notes.append(f"int8 skipped: {exc}")
    promise = _check_promise(
        Path(deployed["artifact"]), card, selection.model, selection.runtime, selection.promised_ms, limit_ms
    )
    if not promise["kept"]:
        busier = promise["machine_drift"] and promise["machine_drift"] > 1 + PROMISE_TOLERANCE
        notes.append(
            f"the deployed model measures {promise['measured_ms']:.3f} ms against the {promise['promised_ms']:.3f} ms "
            f"promised ({promise['ratio']:.2f}x); "
            + (
                f"the untrained architecture measures {promise['reference_ms']:.3f} ms now too: the machine is busier"
                if busier
                else "the untrained architecture still measures as promised, so the deployed graph is slower"
            )
        )
    deploy_dir = run.path / "deploy"
    deploy_dir.mkdir(exist_ok=True)
    artifact = Path(deployed["artifact"])
    shutil.copy2(artifact, deploy_dir / artifact.name)
    for sidecar in artifact.parent.glob(artifact.stem + "*.json"):
        shutil.copy2(sidecar, deploy_dir / sidecar.name)
    shutil.copy2(trained.path / "card.json", deploy_dir / "card.json")
    deployed["file"] = str(deploy_dir / artifact.name)
    now = stage_done("export_compress", now)

    say("4/4 report")
    runs = [run.path / "select", trained.path] + (
        [run.path / "compress"] if (run.path / "compress" / "run.json").is_file() else []
    )
    report_path = write_report(runs, out=run.path / "report.html", title=f"cnnlab fit: {data}")
    stage_done("report", now)
    stages["total"] = round(time.monotonic() - started, 1)
    result = FitReport(
        path=run.path,
        recommended={
            "candidate": selection.recommended,
            "model": selection.model,
            "input_size": selection.input_size,
            "rationale": selection.rationale,
        },
        test_top1=test_top1,
        deployed=deployed,
        promise=promise,
        stages_s=stages,
        notes=notes,
    )
    run.write_json(FIT_FILE, result.to_dict())
    run.update_run_json(
        status="completed", report=str(report_path), deployed=deployed, promise=promise, stages_s=stages
    )
    return result
