"""Detection on the procedural shapes set: how fast the YOLO-style detector learns it, whether its
export draws the same boxes, and the one-table trade-off between detectors.

    .venv/bin/python -m benchmarks.detect_shapes [--part train tradeoff] [--budget 10m] [--models yolo_n,yolo_s]

train: `cnnlab data make shapes` (800/100/100 images of 160 px, seed 0), then yolo_n trained with a time
    budget (the issue asks for mAP@.5 >= 0.90 on the held-out split within 20 minutes); records the
    validation curve, the first time validation mAP@.5 reached 0.90, the test metrics, and the ONNX
    export's parity (same boxes after NMS, matched IoU).
tradeoff: each of --models trained with the same recipe and --tradeoff-budget, then test mAP, batch-1
    latency of torch eager and of the ONNX export on ONNX Runtime (alternating rounds, one process),
    params and MACs at 160 px.
costs: the test mAP, export, parity and latency of the trade-off runs already trained (runs/bench-detect/
    <label>-<model>) with the current code, without training again: training can share the machine,
    timing cannot.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from benchmarks.common import save
from cnnlab.train import parse_duration, train_model

OUT = Path("runs/bench-detect")
SIDE = 160


def shapes() -> Path:
    from cnnlab.data.detection import make_shapes

    data = OUT / "shapes"
    if not data.exists():
        make_shapes(data, n_train=800, n_val=100, n_test=100, size=SIDE, fmt="coco", seed=0)
    return data


def train(model: str, budget_s: float, name: str, lr: float | None = 0.002) -> dict:
    result = train_model(
        data=str(shapes()),
        model=model,
        input_size=[3, SIDE, SIDE],
        budget_s=budget_s,
        batch_size=16,
        lr=lr,
        ema=True,
        out=OUT / name,
        overwrite=True,
        progress=False,
    )
    rows = list(csv.DictReader((result.path / "metrics.csv").open()))
    curve = [
        {"epoch": int(r["epoch"]), "elapsed_s": float(r["elapsed_s"]), "val_map50": float(r["val_map50"]),
         "val_map": float(r["val_map"])}
        for r in rows
    ]  # fmt: skip
    reached = next((c["elapsed_s"] for c in curve if c["val_map50"] >= 0.90), None)
    test = {k: result.metrics[k] for k in ("map", "map50", "map75", "mar_100", "ap50_per_class")}
    return {"run": str(result.path), "lr": result.plan.lr, "epochs": result.state.epoch, "curve": curve,
            "val_map50_0.90_at_s": reached, "test": test, "train_s": round(result.state.elapsed_s, 1)}  # fmt: skip


def test_metrics(run: str) -> dict:
    """The test split scored again with the current code (test-time settings may have changed)."""
    from cnnlab.evaluate import evaluate_run

    metrics = evaluate_run(run, split="test", batch_size=16, write=False)
    return {k: metrics[k] for k in ("map", "map50", "map75", "mar_100", "ap50_per_class")}


def parity(run: str) -> dict:
    from cnnlab.errors import CnnlabError
    from cnnlab.export import export_run

    try:
        report = export_run(run, "onnx", pick_runtime=False)
    except CnnlabError as exc:  # torchvision's detectors: recorded, the table says "not exported"
        return {"passed": False, "error": str(exc).splitlines()[0][:300]}
    return report.parity["onnx"].to_dict()


def _export_verdict(parity: dict) -> str:
    if parity.get("passed"):
        return "onnx, parity passed"
    return parity.get("error") or "onnx, parity failed"


def costs(run: str) -> dict:
    from cnnlab.profile.counting import count_macs, count_params
    from cnnlab.profile.latency import alternating_medians
    from cnnlab.runs import load_run
    from cnnlab.runtime import load_predictor

    loaded = load_run(run)
    model = loaded.model.eval()
    example = torch.randn(1, 3, SIDE, SIDE)
    contenders = {"torch": lambda: model(example)}
    artifact = Path(run) / "export" / "model.onnx"
    if artifact.is_file():
        onnx = load_predictor(artifact, runtime="onnxruntime")
        contenders["onnxruntime"] = lambda: onnx.run(example)
    with torch.inference_mode():
        timed = alternating_medians(contenders, rounds=8, runs=10, warmup=5)
    return {
        "params": count_params(model).total,
        "macs": count_macs(model, example)[0],
        "latency_ms": {k: round(v.median_ms, 3) for k, v in timed.items()},
        "latency_spread_ms": {k: [round(v.min_ms, 3), round(v.p95_ms, 3)] for k, v in timed.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", nargs="+", default=["train"], choices=["train", "tradeoff", "costs"])
    parser.add_argument("--budget", default="10m")
    parser.add_argument("--tradeoff-budget", default="5m")
    parser.add_argument(
        "--label",
        default="tradeoff",
        help="results key and run-name prefix: another label (e.g. tradeoff-20m) keeps the 5-minute table",
    )
    parser.add_argument(
        "--lr",
        default="0.002",
        help="AdamW rate at batch 16 for every model, or 'auto': each detector's recipe default",
    )
    parser.add_argument(
        "--models",
        default="yolo_n,yolo_s,ssdlite320_mobilenet_v3_large,retinanet_mobilenet_v2_fpn,faster_rcnn_mobilenet_v2_fpn",
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    results: dict = {}
    path = Path(__file__).resolve().parent / "results" / "detect_shapes.json"
    if path.exists():
        results = {k: v for k, v in json.loads(path.read_text()).items() if k != "environment"}
    if "train" in args.part:
        found = train("yolo_n", parse_duration(args.budget), "yolo_n")
        found["parity"] = parity(found["run"])
        results["train"] = found
        print(json.dumps({k: v for k, v in found.items() if k != "curve"}, indent=2))
    if "tradeoff" in args.part:
        rows = {}
        for model in args.models.split(","):
            lr = None if args.lr == "auto" else float(args.lr)
            found = train(model, parse_duration(args.tradeoff_budget), f"{args.label}-{model}", lr)
            exported = parity(found["run"])
            rows[model] = {**found, **costs(found["run"]), "parity": exported}
            rows[model]["export"] = _export_verdict(exported)
            print(model, json.dumps({k: v for k, v in rows[model].items() if k != "curve"}))
        results[args.label] = {**results.get(args.label, {}), **rows}  # models not rerun keep their rows
    if "costs" in args.part:
        for model in args.models.split(","):
            run = OUT / f"{args.label}-{model}"
            exported = parity(str(run))
            row = {**results.get(args.label, {}).get(model, {}), **costs(str(run)), "test": test_metrics(str(run))}
            row["export"] = _export_verdict(exported)
            row["parity"] = exported
            results.setdefault(args.label, {})[model] = row
            print(model, json.dumps({k: v for k, v in row.items() if k != "curve"}))
    save("detect_shapes", results)


if __name__ == "__main__":
    main()
