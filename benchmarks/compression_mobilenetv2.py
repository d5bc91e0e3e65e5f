"""Compression on a fine-tuned pretrained MobileNetV2, issue 6's second model.

    .venv/bin/python -m benchmarks.compression_mobilenetv2 [--side 96] [--per-class 500] [--epochs 3]

1. `train_model`: timm's mobilenetv2_100 with the ImageNet weights that ship offline, fine-tuned on
   Fashion-MNIST (``--per-class`` training images per class, ``--side`` px, the auto recipe picks
   transfer learning, bf16 autocast).
2. `compress_run(run, quantize="int8")` and `compress_run(run, prune=0.5)`: accuracy on the official
   10,000-image test set, size, latency on ONNX Runtime and OpenVINO at batch 1, alternating.

Runs go under runs/bench-compress-mnv2/, results to benchmarks/results/compression_mobilenetv2.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import save
from cnnlab.compress import compress_run
from cnnlab.train import train_model

OUT = Path("runs/bench-compress-mnv2")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=96)
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--prune-steps", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], choices=["int8", "prune"])
    parser.add_argument("--reuse", action="store_true", help="keep runs/bench-compress-mnv2/finetuned")
    args = parser.parse_args()
    base = OUT / "finetuned"
    if not (args.reuse and (base / "run.json").is_file()):
        train_model(
            data="builtin:fashion-mnist",
            model="mobilenetv2_100",
            pretrained=True,
            epochs=args.epochs,
            train_per_class=args.per_class,
            input_size=[args.side, args.side],
            amp="bf16",
            out=base,
            overwrite=True,
            progress=False,
        )
    record = json.loads((base / "run.json").read_text())
    results: dict = {
        "finetuned": {
            "test_top1": record["test"]["top1"],
            "train_s": record["elapsed_s"],
            "recipe": record.get("plan", {}).get("recipe"),
            "side": args.side,
            "per_class": args.per_class,
            "epochs": args.epochs,
        }
    }
    print("fine-tuned:", results["finetuned"], flush=True)
    if "int8" not in args.skip:
        report = compress_run(base, quantize="int8", out=OUT / "int8", overwrite=True, val_limit=None)
        results["int8"] = {"steps": [s.to_dict() for s in report.steps], "verdict": report.verdict}
        print("int8:", report.verdict, flush=True)
    elif (OUT / "int8" / "compression.json").is_file():  # skipped now: its earlier run's report
        earlier = json.loads((OUT / "int8" / "compression.json").read_text())
        results["int8"] = {key: earlier[key] for key in ("steps", "verdict", "quantization") if key in earlier}
    if "prune" not in args.skip:
        report = compress_run(
            base, prune=0.5, prune_steps=args.prune_steps, out=OUT / "pruned", overwrite=True, val_limit=None
        )
        results["prune"] = {
            "steps": [s.to_dict() for s in report.steps],
            "verdict": report.verdict,
            "pruning": json.loads((OUT / "pruned" / "compression.json").read_text())["pruning"],
        }
        print("prune:", report.verdict, flush=True)
    save("compression_mobilenetv2", results)


if __name__ == "__main__":
    main()
