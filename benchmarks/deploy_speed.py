"""Batch-1 latency: `cnnlab export` + the runtime it picks, against PyTorch eager and against ONNX
Runtime and OpenVINO used directly with their default settings, in one process, alternating.

    .venv/bin/python -m benchmarks.deploy_speed [--models mobilenetv2_100 ...] [--weights trained|random]
        [--precision auto|f32|bf16]

The models are what people deploy: trained (`--weights trained`, the default): `cnnlab train` from
scratch on 3,000 Fashion-MNIST images (300 per class) at 224x224 for one epoch (bf16 autocast), so
the logits decide something and the parity batch is real test images; the stem takes 1 channel.
`--weights random` measures timm's random initialisation on 3-channel noise instead (what the first
runs of this benchmark did): its logits are near-ties, which lower precisions flip.

The direct baselines are what a user writes without cnnlab: `torch.onnx.export(model, (x,), f)` then
`onnxruntime.InferenceSession(f)`; and `openvino.compile_model(openvino.convert_model(model,
example_input=x), "CPU")`, whose default precision on a CPU with bf16 units is bf16 (also timed
pinned to f32). Claims: cnnlab >= 3x eager, and >= the best direct runtime (ratio >= 1.0).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import torch

from benchmarks.common import save
from cnnlab.export import export_run
from cnnlab.export.api import parity_batch
from cnnlab.profile.latency import alternating_medians
from cnnlab.registry import create_model, get_entry
from cnnlab.runs import ModelCard, load_run, save_model
from cnnlab.runtime import load_predictor
from cnnlab.train import train_model

MODELS = ["mobilenetv2_100", "mobilenetv3_large_100", "efficientnet_b0"]
TRAINED = Path("runs/bench-deploy")


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


def direct_openvino(model: torch.nn.Module, x: torch.Tensor, precision: str | None = None):
    """OpenVINO with its defaults; ``precision`` pins INFERENCE_PRECISION_HINT (its default on a CPU
    with bf16 units is bf16, which changes the model's outputs)."""
    import openvino as ov

    config = {} if precision is None else {"INFERENCE_PRECISION_HINT": precision}
    compiled = ov.compile_model(ov.convert_model(model, example_input=x), "CPU", config)
    data = x.numpy()
    return lambda: compiled(data)


def trained_run(name: str, out: Path) -> Path:
    run = out / name
    if not (run / "model.safetensors").is_file():
        train_model(
            data="builtin:fashion-mnist",
            model=name,
            input_size=[224, 224],
            train_per_class=300,
            epochs=1,
            batch_size=32,
            amp="bf16",
            out=run,
            overwrite=True,
            progress=False,
            evaluate_test=False,
        )
    return run


def random_run(name: str, folder: Path) -> Path:
    torch.manual_seed(0)
    entry = get_entry(name)
    card = ModelCard(
        architecture=name,
        num_classes=entry.num_classes,
        in_chans=3,
        input_size=list(entry.input_size),
        mean=list(entry.mean),
        std=list(entry.std),
    )
    save_model(create_model(name).eval(), card, folder / "run")
    return folder / "run"


def measure(name: str, rounds: int, runs: int, weights: str, precision: str) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        run = trained_run(name, TRAINED) if weights == "trained" else random_run(name, folder)
        loaded = load_run(run)
        model = loaded.model.eval()
        report = export_run(run, "onnx,openvino", precision=precision)
        predictor = load_predictor(run, runtime="auto")
        x = parity_batch(run, loaded.card, 1)[0]
        contenders = {
            "torch eager": lambda: model(x),
            f"cnnlab ({predictor.runtime})": lambda: predictor.run(x),
            "onnxruntime direct": direct_onnxruntime(model, x, folder),
            "openvino direct": direct_openvino(model, x),
            "openvino direct f32": direct_openvino(model, x, "f32"),
        }
        with torch.inference_mode():  # alternating, each block after `settle` (see profile/latency.py)
            stats = alternating_medians(contenders, rounds=rounds, runs=runs, warmup=5)
    med = {k: v.median_ms for k, v in stats.items()}
    ours = next(k for k in med if k.startswith("cnnlab"))
    best_direct = min(med["onnxruntime direct"], med["openvino direct"])
    best_direct_f32 = min(med["onnxruntime direct"], med["openvino direct f32"])
    row = {
        "median_ms": {k: round(v, 3) for k, v in med.items()},
        "p95_ms": {k: round(v.p95_ms, 3) for k, v in stats.items()},
        "runs": stats[ours].runs,
        "weights": weights,
        "picked": f"{report.recommended_runtime} ({report.recommended_precision})",
        "speedup_vs_eager": round(med["torch eager"] / med[ours], 2),
        "ratio_vs_best_direct": round(best_direct / med[ours], 3),
        "ratio_vs_best_direct_f32": round(best_direct_f32 / med[ours], 3),
        "candidates": [
            {k: c[k] for k in ("runtime", "precision", "max_abs_diff", "tolerance", "passed", "median_ms")}
            for c in report.runtime_candidates
        ],
    }
    print(
        f"{name}: "
        + ", ".join(f"{k} {v:.2f} ms" for k, v in med.items())
        + f" -> {row['speedup_vs_eager']}x eager, {row['ratio_vs_best_direct']} vs best direct"
        + f" ({row['ratio_vs_best_direct_f32']} vs best direct f32)",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--weights", choices=["trained", "random"], default="trained")
    parser.add_argument(
        "--precision", choices=["auto", "f32", "bf16"], default="auto", help="cnnlab export --precision"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    results = {name: measure(name, args.rounds, args.runs, args.weights, args.precision) for name in args.models}
    record = {"batch": 1, "rounds": args.rounds, "runs_per_round": args.runs, "weights": args.weights}
    suffix = "" if args.precision == "auto" else f"_{args.precision}"
    save(f"deploy_speed_{args.weights}{suffix}", {**record, "precision": args.precision, "models": results})


if __name__ == "__main__":
    main()
