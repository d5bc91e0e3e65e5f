"""Batch-1 latency: `cnnlab export` + the runtime it picks, against PyTorch eager and against ONNX
Runtime and OpenVINO used directly with their default settings, in one process, alternating.

    .venv/bin/python -m benchmarks.deploy_speed [--models mobilenetv2_100 ...] [--rounds 15]

The direct baselines are what a user writes without cnnlab: `torch.onnx.export(model, (x,), f)` then
`onnxruntime.InferenceSession(f)`; and `openvino.compile_model(openvino.convert_model(model,
example_input=x), "CPU")`. Claims: cnnlab >= 3x eager, and >= the best direct runtime (ratio >= 1.0).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import save
from cnnlab.export import export_run
from cnnlab.registry import create_model, get_entry
from cnnlab.runs import ModelCard, save_model
from cnnlab.runtime import load_predictor

MODELS = ["mobilenetv2_100", "mobilenetv3_large_100", "efficientnet_b0"]


def direct_onnxruntime(model: torch.nn.Module, x: torch.Tensor, folder: Path):
    import onnxruntime as ort

    path = folder / "direct.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), verbose=False)
    session = ort.InferenceSession(str(path))
    name = session.get_inputs()[0].name
    data = x.numpy()
    return lambda: session.run(None, {name: data})


def direct_openvino(model: torch.nn.Module, x: torch.Tensor):
    import openvino as ov

    compiled = ov.compile_model(ov.convert_model(model, example_input=x), "CPU")
    data = x.numpy()
    return lambda: compiled(data)


def measure(name: str, rounds: int, runs: int) -> dict:
    torch.manual_seed(0)
    model = create_model(name).eval()
    entry = get_entry(name)
    x = torch.randn(1, *entry.input_size)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        card = ModelCard(
            architecture=name,
            num_classes=entry.num_classes,
            in_chans=3,
            input_size=list(entry.input_size),
            mean=list(entry.mean),
            std=list(entry.std),
        )
        save_model(model, card, folder / "run")
        report = export_run(folder / "run", "onnx,openvino")
        predictor = load_predictor(folder / "run", runtime="auto")
        contenders = {
            "torch eager": lambda: model(x),
            f"cnnlab ({predictor.runtime})": lambda: predictor.run(x),
            "onnxruntime direct": direct_onnxruntime(model, x, folder),
            "openvino direct": direct_openvino(model, x),
        }
        samples = {k: [] for k in contenders}
        with torch.inference_mode():
            for fn in contenders.values():
                for _ in range(5):
                    fn()
            for _ in range(rounds):
                for key, fn in contenders.items():
                    for _ in range(runs):
                        start = time.perf_counter()
                        fn()
                        samples[key].append((time.perf_counter() - start) * 1000)
    med = {k: statistics.median(v) for k, v in samples.items()}
    ours = next(k for k in med if k.startswith("cnnlab"))
    best_direct = min(med["onnxruntime direct"], med["openvino direct"])
    row = {
        "median_ms": {k: round(v, 3) for k, v in med.items()},
        "p95_ms": {k: round(float(np.percentile(v, 95)), 3) for k, v in samples.items()},
        "runs": len(samples[ours]),
        "picked": report.recommended_runtime,
        "speedup_vs_eager": round(med["torch eager"] / med[ours], 2),
        "ratio_vs_best_direct": round(best_direct / med[ours], 3),
    }
    print(
        f"{name}: "
        + ", ".join(f"{k} {v:.2f} ms" for k, v in med.items())
        + f" -> {row['speedup_vs_eager']}x eager, {row['ratio_vs_best_direct']} vs best direct",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    results = {name: measure(name, args.rounds, args.runs) for name in args.models}
    save("deploy_speed", {"batch": 1, "rounds": args.rounds, "runs_per_round": args.runs, "models": results})


if __name__ == "__main__":
    main()
