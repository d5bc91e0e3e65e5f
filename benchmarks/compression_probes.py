"""Two probes behind the compression benchmark's choices, timed on ONNX Runtime at batch 1.

    .venv/bin/python -m benchmarks.compression_probes [--part width multiple] [--run runs/bench-compress-w1/teacher]

width: int8 against fp32 for the CIFAR ResNet-20 at width 1, 2 and 4 (random weights, calibration on
    random images: the speed of the kernels, not accuracy). Thin convolutions do not pay for int8.
multiple: a trained ResNet-20 (``--run``) pruned by a share of its channels without recovery, channel
    counts rounded to multiples of 8 or of 16 (the AVX-512 block), against the unpruned model.

Every contender of a part alternates in one process (20 rounds x 20 runs, settled), medians compared.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import save
from cnnlab.compress.evaluation import ort_session
from cnnlab.profile.latency import alternating_medians


def _timed(paths: dict[str, Path], shape: tuple[int, ...]) -> dict[str, float]:
    x = np.random.rand(*shape).astype(np.float32)
    runners = {}
    for name, path in paths.items():
        session = ort_session(path)
        runners[name] = (lambda s, n: lambda: s.run(None, {n: x}))(session, session.get_inputs()[0].name)
    timed = alternating_medians(runners, rounds=20, runs=20, warmup=5)
    return {name: round(t.median_ms, 4) for name, t in timed.items()}


def _export(model: torch.nn.Module, path: Path, side: int = 32) -> Path:
    torch.onnx.export(model.eval(), torch.randn(1, 1, side, side), str(path), dynamo=True, external_data=False)
    return path


def width_probe(folder: Path) -> dict:
    from cnnlab.compress.quantize import Quantizer
    from cnnlab.registry import create_model

    paths = {}
    for width in (1, 2, 4):
        fp32 = _export(create_model("cifar_resnet20", in_chans=1, shortcut="B", width=width), folder / f"w{width}.onnx")
        calibration = [np.random.rand(1, 1, 32, 32).astype(np.float32) for _ in range(16)]
        with Quantizer(fp32, calibration) as quantizer:
            paths[f"width {width} int8"] = quantizer.quantize(folder / f"w{width}.int8.onnx")
        paths[f"width {width} fp32"] = fp32
    medians = _timed(paths, (1, 1, 32, 32))
    return {
        "median_ms": medians,
        "int8_speedup": {w: round(medians[f"width {w} fp32"] / medians[f"width {w} int8"], 2) for w in (1, 2, 4)},
    }


def multiple_probe(folder: Path, run: Path) -> dict:
    import torch_pruning as tp

    from cnnlab.profile.counting import count_macs
    from cnnlab.runs import load_run

    base = load_run(run).model.eval()
    example = torch.randn(1, 1, 32, 32)
    paths, shapes = {"unpruned": _export(base, folder / "unpruned.onnx")}, {}
    for ratio in (0.25, 0.5):
        for multiple in (8, 16):
            model = copy.deepcopy(base)
            tp.pruner.MetaPruner(
                model,
                example,
                importance=tp.importance.GroupMagnitudeImportance(p=2),
                pruning_ratio=ratio,
                round_to=multiple,
                ignored_layers=[model.get_classifier()],
            ).step()
            name = f"{ratio:.0%} at multiples of {multiple}"
            paths[name] = _export(model, folder / f"{ratio}-{multiple}.onnx")
            widths = sorted({m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)})
            shapes[name] = {"widths": widths, "macs": count_macs(model, example)[0]}
    medians = _timed(paths, (1, 1, 32, 32))
    return {
        "run": str(run),
        "median_ms": medians,
        "speedup": {k: round(medians["unpruned"] / v, 2) for k, v in medians.items()},
        "shapes": shapes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", nargs="+", default=["width", "multiple"], choices=["width", "multiple"])
    parser.add_argument("--run", default="runs/bench-compress-w1/teacher", help="a trained 1-channel ResNet-20 run")
    args = parser.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="cnnlab-probe-") as scratch:
        if "width" in args.part:
            results["width"] = width_probe(Path(scratch))
            print("width:", results["width"]["int8_speedup"], flush=True)
        if "multiple" in args.part:
            results["multiple"] = multiple_probe(Path(scratch), Path(args.run))
            print("multiple:", results["multiple"]["speedup"], flush=True)
    save("compression_probes", results)


if __name__ == "__main__":
    main()
