"""Stage 1 of selection: what each candidate costs on this machine, measured through the deployment
runtime (an ONNX export timed by ONNX Runtime or OpenVINO), not estimated from FLOPs.

Weights do not change latency, so candidates are measured untrained, with the data's classes and
channels: the exported, trained model runs the same graph.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import CnnlabError
from cnnlab.runs import ModelCard
from cnnlab.select.pool import Candidate

RUNTIMES = ("auto", "onnxruntime", "openvino")


@dataclass
class Cost:
    candidate: str
    model: str
    input_size: list[int]
    params: int = 0
    macs: int = 0
    size_bytes: int = 0  # the float ONNX file
    memory_bytes: int = 0  # peak live activations at batch 1
    latency_ms: dict[str, float] = field(default_factory=dict)  # batch-1 median per runtime
    runtime: str | None = None  # where it is promised (the fastest measured, or the one asked)
    error: str | None = None  # why it could not be built, exported or run

    @property
    def promised_ms(self) -> float | None:
        return self.latency_ms.get(self.runtime) if self.runtime else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "promised_ms": self.promised_ms}


def card_for(candidate: Candidate, num_classes: int, in_chans: int) -> tuple[torch.nn.Module, ModelCard]:
    """The untrained candidate and the card it would be deployed with."""
    from cnnlab.registry import create_model, get_entry, is_spec_path

    model = create_model(candidate.model, num_classes=num_classes, in_chans=in_chans).eval()
    default = (
        list(model.default_input_size) if is_spec_path(candidate.model) else list(get_entry(candidate.model).input_size)
    )
    spatial = [candidate.side] * (len(default) - 1) if candidate.side else default[1:]
    card = ModelCard(
        architecture=candidate.model,
        num_classes=num_classes,
        in_chans=in_chans,
        input_size=[in_chans, *spatial],
        mean=[0.5] * in_chans,
        std=[0.5] * in_chans,
    )
    return model, card


def artifact_latency_ms(onnx_path: Path, card: ModelCard, runtimes: list[str]) -> dict[str, float]:
    """Batch-1 median latency of an exported model on each runtime, timed in alternating rounds.

    The same protocol measures a candidate in stage 1 and the deployed model after training, so the
    promise and its check are comparable."""
    timed = paired_artifact_latency_ms({"model": onnx_path}, card, runtimes)
    return {runtime: values["model"] for runtime, values in timed.items()}


def paired_artifact_latency_ms(
    artifacts: dict[str, Path], card: ModelCard, runtimes: list[str], rounds: int = 6, runs: int = 8
) -> dict[str, dict[str, float]]:
    """{runtime: {artifact name: batch-1 median ms}}, every artifact and runtime timed in one set of
    alternating rounds, so their ratios hold on a noisy machine."""
    from cnnlab.compress.evaluation import runtime_callables
    from cnnlab.profile.latency import alternating_medians

    single = torch.randn(1, *card.input_size)
    runners = {}
    for name, path in artifacts.items():
        available = runtime_callables(path, card, single)
        for runtime in runtimes:
            if runtime in available:
                runners[(runtime, name)] = available[runtime]
    if not runners:
        names = ", ".join(p.name for p in artifacts.values())
        raise CnnlabError(f"none of {', '.join(runtimes)} can run {names}; install onnxruntime or cnnlab[openvino]")
    medians = alternating_medians(runners, rounds=rounds, runs=runs, warmup=5)
    timed: dict[str, dict[str, float]] = {}
    for (runtime, name), stats in medians.items():
        timed.setdefault(runtime, {})[name] = round(stats.median_ms, 4)
    return timed


def paired_latency_in_fresh_process(
    artifacts: dict[str, Path], card: ModelCard, runtimes: list[str], rounds: int = 6
) -> dict[str, dict[str, float]]:
    """:func:`paired_artifact_latency_ms` run in a new Python process.

    A process that has just trained with torch runs ONNX Runtime measurably slower (1.3-1.7x measured
    after `cnnlab fit`'s training, on the untrained reference too), so a promise is checked where a
    deployed model would run: in a process that has done nothing else."""
    import json
    import subprocess
    import sys

    request = {
        "artifacts": {name: str(path) for name, path in artifacts.items()},
        "card": card.to_dict(),
        "runtimes": runtimes,
        "rounds": rounds,
    }
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab.select.measure"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise CnnlabError(f"timing {', '.join(artifacts)} in a fresh process failed ({done.returncode}): {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _timing_worker() -> None:
    """`python -m cnnlab.select.measure`: a JSON request on stdin, the timings as one JSON line on stdout."""
    import json
    import sys

    request = json.loads(sys.stdin.read())
    artifacts = {name: Path(path) for name, path in request["artifacts"].items()}
    card = ModelCard.from_dict(request["card"], origin="timing request")
    timed = paired_artifact_latency_ms(artifacts, card, request["runtimes"], rounds=int(request["rounds"]))
    print(json.dumps(timed))


def runtimes_for(runtime: str) -> list[str]:
    if runtime not in RUNTIMES:
        raise CnnlabError(f"--runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
    return ["onnxruntime", "openvino"] if runtime == "auto" else [runtime]


def measure_cost(candidate: Candidate, num_classes: int, in_chans: int, runtime: str = "auto") -> Cost:
    """Params, MACs, size, activation memory and deployed latency of one candidate. A candidate that
    cannot be built, exported or run gets its reason in ``error`` instead of stopping the selection."""
    from cnnlab.compress.evaluation import export_fp32
    from cnnlab.profile.counting import count_macs, count_params
    from cnnlab.profile.memory import peak_activation_bytes

    cost = Cost(candidate.label, candidate.model, [])
    try:
        model, card = card_for(candidate, num_classes, in_chans)
        cost.input_size = list(card.input_size)
        example = torch.randn(1, *card.input_size)
        cost.params = count_params(model).total
        cost.macs, _ = count_macs(model, example)
        cost.memory_bytes = peak_activation_bytes(model, example)
        with tempfile.TemporaryDirectory(prefix="cnnlab-select-") as folder:
            onnx_path = export_fp32(model, card, Path(folder))
            cost.size_bytes = onnx_path.stat().st_size + sum(p.stat().st_size for p in Path(folder).glob("*.data"))
            cost.latency_ms = artifact_latency_ms(onnx_path, card, runtimes_for(runtime))
    except Exception as exc:  # one broken candidate is a row in the table, not the end of the selection
        cost.error = _first_line(exc)
        return cost
    cost.runtime = min(cost.latency_ms, key=cost.latency_ms.__getitem__)
    return cost


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:240]}" if text else type(exc).__name__


if __name__ == "__main__":
    _timing_worker()
