"""Few-shot transfer on Fashion-MNIST: 10 labelled images per class, evaluated on the full 10k test set.

    .venv/bin/python benchmarks/transfer_few_shot.py [--models mobilenetv2_100 tf_efficientnet_lite0]

For each model, the same architecture, data, epochs and batch size twice: `--pretrained` (the
offline ImageNet weights) with `--recipe auto`, and from scratch (auto falls back to the scratch
recipe without weights). The claim: pretrained + auto beats scratch by at least 10 points.

Validation is few-shot too: `--val-fraction 0.002` of the official training images (about 12 per
class) choose the best epoch, as a user with a handful of labelled images would have; the 10k test
images are only used once, at the end.
"""

from __future__ import annotations

import argparse

from benchmarks.common import save
from cnnlab.train import train_model


def run(model: str, pretrained: bool, per_class: int, epochs: int, side: int, val_fraction: float) -> dict:
    result = train_model(
        data="builtin:fashion-mnist",
        model=model,
        pretrained=pretrained,
        recipe="auto",
        train_per_class=per_class,
        val_fraction=val_fraction,
        epochs=epochs,
        batch_size=16,
        input_size=[side, side],
        out=f"runs/bench-fewshot-{model}-{pretrained}",
        overwrite=True,
        progress=False,
    )
    print(
        f"{model} pretrained={pretrained}: recipe {result.plan.recipe}, test top-1 {result.metrics['top1']:.4f}",
        flush=True,
    )
    return {
        "recipe": result.plan.recipe,
        "reasoning": result.plan.reasoning,
        "probe": result.plan.probe,
        "test_top1": result.metrics["top1"],
        "macro_f1": result.metrics["macro_f1"],
        "train_s": round(result.state.elapsed_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["mobilenetv2_100", "tf_efficientnet_lite0"])
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--val-fraction", type=float, default=0.002)
    parser.add_argument("--name", default="transfer_few_shot", help="Result file name under benchmarks/results/.")
    args = parser.parse_args()
    rows = {}
    for model in args.models:
        pre = run(model, True, args.per_class, args.epochs, args.side, args.val_fraction)
        scratch = run(model, False, args.per_class, args.epochs, args.side, args.val_fraction)
        rows[model] = {
            "pretrained_auto": pre,
            "scratch": scratch,
            "gain_points": round(100 * (pre["test_top1"] - scratch["test_top1"]), 2),
        }
        print(f"{model}: +{rows[model]['gain_points']} points from pretrained + auto", flush=True)
    summary = {"per_class": args.per_class, "epochs": args.epochs, "side": args.side, "val_fraction": args.val_fraction}
    save(args.name, {**summary, "models": rows})


if __name__ == "__main__":
    main()
