"""Profiler numbers for the models with published counts: parameters, MACs against the published
tables, and torch eager latency on this machine at batch 1 and 32.

    .venv/bin/python benchmarks/profile_latency.py [--batch 1 32] [--models resnet18 ...]

Latency is `profile_model`'s protocol: warm-up excluded, adaptive number of timed runs (about 1.5 s
per measurement, at least a few runs), min / median / p95, torch's default threads (2 here).
"""

from __future__ import annotations

import argparse

from benchmarks.common import save
from cnnlab.profile import profile_model

# name: (input side, published params, published GMACs: timm / torchvision tables)
PUBLISHED = {
    "resnet18": (224, 11_689_512, 1.81),
    "resnet50": (224, 25_557_032, 4.09),
    "vgg16": (224, 138_357_544, 15.47),
    "mobilenetv2_100": (224, 3_504_872, 0.30),
    "mobilenetv3_large_100": (224, 5_483_032, 0.22),
    "efficientnet_b0": (224, 5_288_548, 0.386),
    "alexnet": (224, 61_100_840, 0.71),
    "inception_v3": (299, 23_834_568, 5.71),
    "densenet121": (224, 7_978_856, 2.83),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=list(PUBLISHED))
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 32])
    args = parser.parse_args()
    rows = {}
    for name in args.models:
        side, params, gmacs = PUBLISHED[name]
        report = profile_model(name, batch_sizes=args.batch, input_size=(3, side, side))
        latency = {str(b.batch): b.latency["torch"].to_dict() for b in report.batches}
        rows[name] = {
            "input": side,
            "params": report.params,
            "params_published": params,
            "gmacs": round(report.macs / 1e9, 4),
            "gmacs_published": gmacs,
            "macs_error": round(report.macs / 1e9 / gmacs - 1, 4),
            "latency_ms": latency,
        }
        medians = ", ".join(f"b{b}: {v['median_ms']:.1f} ms" for b, v in latency.items())
        print(f"{name}: {report.params} params, {report.macs / 1e9:.3f} GMACs, {medians}", flush=True)
    save("profile_latency", {"threads": report.threads, "protocol": report.protocol, "models": rows})


if __name__ == "__main__":
    main()
