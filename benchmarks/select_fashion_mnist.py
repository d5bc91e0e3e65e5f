"""Architecture selection: is the recommendation right, and does its cost grow sub-linearly?

    .venv/bin/python -m benchmarks.select_fashion_mnist [--part scaling accuracy] [--budget 30m]

scaling: successive halving on builtin:digits with 3, 6 and 12 candidates of the small pool and an
    epoch cap that binds (--scaling-epochs, time budget generous): stage-2 wall time per pool size,
    against training every candidate for the cap (sum of their measured seconds per epoch x cap).
accuracy: `select_architecture` on builtin:fashion-mnist with a 5 ms batch-1 budget and a 30-minute
    budget, then the top 3 of the halving (the last round, topped up from the round before) trained
    fully with the same auto recipe (--full-epochs) and evaluated on the official test set: the
    recommendation should be within 1 point of the best of them, and each trained model's own export
    should measure what selection promised.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.common import RESULTS, save
from cnnlab.select import select_architecture
from cnnlab.select.measure import artifact_latency_ms
from cnnlab.select.pool import SMALL_POOL
from cnnlab.train import parse_duration, train_model

OUT = Path("runs/bench-select")


def scaling(epochs: int) -> dict:
    rows = []
    for n in (3, 6, 12):
        pool = list(SMALL_POOL[:n])
        started = time.monotonic()
        report = select_architecture(
            "builtin:digits",
            candidates=pool,
            budget_s=3600,
            max_epochs=epochs,
            out=OUT / f"scaling-{n}",
            overwrite=True,
            log=print,
        )
        per_epoch = {}
        for trials in report.rounds:
            for t in trials:
                if t.epochs:
                    per_epoch[t.candidate] = t.train_s / t.epochs
        everyone = sum(per_epoch.get(c, 0.0) * epochs for c in pool)
        rows.append(
            {
                "candidates": n,
                "rounds": [len(r) for r in report.rounds],
                "trials": report.timing["trials"],
                "stage1_s": report.timing["stage1_s"],
                "stage2_s": report.timing["stage2_s"],
                "train_everyone_s": round(everyone, 1),
                "wall_s": round(time.monotonic() - started, 1),
                "recommended": report.recommended,
            }
        )
        print(rows[-1], flush=True)
    return {"epochs_cap": epochs, "rows": rows}


def accuracy(budget_s: float, full_epochs: int, reuse_selection: bool = False) -> dict:
    selection_file = OUT / "fmnist" / "select.json"
    if not reuse_selection:
        report = select_architecture(
            "builtin:fashion-mnist", max_latency="5ms", budget_s=budget_s, out=OUT / "fmnist", overwrite=True, log=print
        )
        print("\n".join(report.rationale), flush=True)
    selection = json.loads(selection_file.read_text())
    latest = {t["candidate"]: t for trials in selection["rounds"] for t in trials if t["error"] is None}
    ranked = sorted(latest.values(), key=lambda t: (-t["round"], -(t["val_top1"] or 0.0)))
    finalists = [t["candidate"] for t in ranked[:3]]  # the last round, topped up from the one before
    by_label = {c["candidate"]: c for c in selection["candidates"]}
    recommended = selection["recommended"]["candidate"]
    full = {}
    for label in finalists:
        model, _, side = label.partition("@")
        result = train_model(
            data="builtin:fashion-mnist",
            model=model,
            epochs=full_epochs,
            input_size=[int(side), int(side)] if side else None,
            out=OUT / f"full-{label.replace('@', '-')}",
            overwrite=True,
            progress=False,
        )
        from cnnlab.export import export_run
        from cnnlab.runs import load_run

        exported = export_run(result.path, "onnx", pick_runtime=False)
        runtime = by_label[label]["runtime"]
        measured = artifact_latency_ms(Path(exported.artifacts["onnx"]["path"]), load_run(result.path).card, [runtime])
        full[label] = {
            "test_top1": result.metrics["top1"],
            "train_s": round(result.state.elapsed_s, 1),
            "promised_ms": by_label[label]["promised_ms"],
            "measured_ms": measured[runtime],
            "runtime": runtime,
        }
        print(label, full[label], flush=True)
    best = max(full, key=lambda k: full[k]["test_top1"])
    chosen = full.get(recommended, {})
    return {
        "budget_s": budget_s,
        "max_latency_ms": 5.0,
        "recommended": recommended,
        "rationale": selection["rationale"],
        "timing": selection["timing"],
        "rounds": selection["rounds"],
        "excluded": selection["excluded"],
        "full_epochs": full_epochs,
        "full": full,
        "best_fully_trained": best,
        "gap_points": round(100 * (full[best]["test_top1"] - chosen.get("test_top1", 0.0)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", nargs="*", default=["scaling", "accuracy"], choices=["scaling", "accuracy"])
    parser.add_argument("--budget", default="30m")
    parser.add_argument("--full-epochs", type=int, default=10)
    parser.add_argument("--scaling-epochs", type=int, default=9)
    parser.add_argument("--reuse-selection", action="store_true", help="full trainings only, from select.json")
    args = parser.parse_args()
    path = RESULTS / "select_fashion_mnist.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.pop("environment", None)
    if "scaling" in args.part:
        results["scaling"] = scaling(args.scaling_epochs)
        save("select_fashion_mnist", results)
    if "accuracy" in args.part:
        results["accuracy"] = accuracy(parse_duration(args.budget), args.full_epochs, args.reuse_selection)
        save("select_fashion_mnist", results)


if __name__ == "__main__":
    main()
