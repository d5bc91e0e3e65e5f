"""Does a latency promise hold after training? In-process versus fresh-process timing.

    .venv/bin/python -m benchmarks.promise_drift [--model cifar_resnet20] [--budget 2m]

Selection promises the batch-1 latency of an untrained export (stage 1, timed before any training).
`cnnlab fit` then trains in the same process and checks the promise. After the Fashion-MNIST selection
benchmark the winner measured 1.30x its promise when timed in that process. This script measures the
same architecture four ways, all through ONNX Runtime with the selection protocol:
  before   the untrained export, in this process, before any training (what stage 1 promises)
  after    the trained export and the untrained one, in this process, right after training
  fresh    the same two, in a new Python process (what `cnnlab fit` now does)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from benchmarks.common import save
from cnnlab.compress.evaluation import export_fp32
from cnnlab.registry import create_model
from cnnlab.select.measure import card_for, paired_artifact_latency_ms, paired_latency_in_fresh_process
from cnnlab.select.pool import Candidate
from cnnlab.train import parse_duration, train_model

OUT = Path("runs/bench-promise")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cifar_resnet20")
    parser.add_argument("--data", default="builtin:fashion-mnist")
    parser.add_argument("--budget", default="2m")
    args = parser.parse_args()
    torch.set_num_threads(2)
    _, card = card_for(Candidate(args.model, 32), num_classes=10, in_chans=1)
    folder = Path(tempfile.mkdtemp(prefix="promise-"))
    for part in ("reference", "trained"):
        (folder / part).mkdir()
    reference = export_fp32(create_model(args.model, num_classes=10, in_chans=1).eval(), card, folder / "reference")
    before = paired_artifact_latency_ms({"reference": reference}, card, ["onnxruntime"], rounds=10)["onnxruntime"]
    result = train_model(
        data=args.data, model=args.model, input_size=[1, 32, 32], budget_s=parse_duration(args.budget),
        out=OUT, overwrite=True, progress=False, evaluate_test=False,
    )  # fmt: skip
    trained = export_fp32(result_model(result.path), card, folder / "trained")
    pair = {"trained": trained, "reference": reference}
    after = paired_artifact_latency_ms(pair, card, ["onnxruntime"], rounds=10)["onnxruntime"]
    fresh = paired_latency_in_fresh_process(pair, card, ["onnxruntime"], rounds=10)["onnxruntime"]
    promised = before["reference"]
    found = {
        "model": args.model,
        "promised_ms": promised,
        "in_process_after_training": {k: {"ms": v, "x_promise": round(v / promised, 3)} for k, v in after.items()},
        "fresh_process": {k: {"ms": v, "x_promise": round(v / promised, 3)} for k, v in fresh.items()},
        "train_s": round(result.state.elapsed_s, 1),
    }
    print(json.dumps(found, indent=2))
    save("promise_drift", found)


def result_model(run: Path) -> torch.nn.Module:
    from cnnlab.runs import load_run

    return load_run(run).model.eval()


if __name__ == "__main__":
    main()
