"""`benchmark`: latency of every runtime, side by side, with the protocol stated.

Protocol: each runtime is loaded and warmed up (warm-up excluded); then rounds alternate between
the runtimes, so a noisy machine slows them alike and the ratios hold. Reported per runtime and
batch: min / median / p95 of the model alone on a pre-processed batch, end-to-end (JPEG decode +
pre-processing + model + post-processing), achieved GFLOP/s and its share of this machine's
measured fp32 matmul peak, and the peak resident memory of a process that loads the runtime and
runs the model (measured in a separate process, so runtimes do not share it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.env import cpu_model, hardware, versions
from cnnlab.errors import CnnlabError
from cnnlab.profile.latency import LatencyStats, settle, summarize
from cnnlab.runtime.predictor import Predictor, load_predictor

RUNTIME_ORDER = ("torch", "torch.compile", "onnxruntime", "openvino", "torchscript", "tflite")


@dataclass
class RuntimeResult:
    runtime: str
    batch: int
    model: LatencyStats
    end_to_end: LatencyStats | None
    gflops: float | None
    peak_fraction: float | None
    peak_rss_mb: float | None = None  # whole process: interpreter, torch, runtime, model
    runtime_mb: float | None = None  # what loading this runtime and running the model added

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model"] = self.model.to_dict()
        data["end_to_end"] = self.end_to_end.to_dict() if self.end_to_end else None
        return data


@dataclass
class BenchmarkReport:
    target: str
    input_size: list[int]
    macs: int | None
    threads: int
    matmul_peak_gflops: float
    protocol: str
    results: list[RuntimeResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=hardware)
    versions: dict[str, str] = field(default_factory=versions)

    def speedups(self, batch: int, baseline: str = "torch") -> dict[str, float]:
        rows = {r.runtime: r.model.median_ms for r in self.results if r.batch == batch}
        if baseline not in rows:
            return {}
        return {name: rows[baseline] / ms for name, ms in rows.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "input_size": self.input_size,
            "macs": self.macs,
            "threads": self.threads,
            "cpu": cpu_model(),
            "matmul_peak_gflops": round(self.matmul_peak_gflops, 1),
            "protocol": self.protocol,
            "results": [r.to_dict() for r in self.results],
            "speedup_vs_torch": {str(b): self.speedups(b) for b in sorted({r.batch for r in self.results})},
            "skipped": self.skipped,
            "hardware": self.hardware,
            "versions": self.versions,
        }


def matmul_peak_gflops(threads: int, size: int = 1536, repeats: int = 6) -> float:
    """fp32 GEMM throughput of this machine at ``threads`` threads: the roofline the models are held to."""
    from cnnlab.profile.latency import torch_threads

    a, b = torch.randn(size, size), torch.randn(size, size)
    with torch_threads(threads):
        torch.mm(a, b)
        best = min(_time(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _time(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _jpeg_files(card: Any, count: int, folder: Path) -> list[Path]:
    """Photo-sized JPEGs (640x480, or the input size if larger) for the end-to-end measurement."""
    from PIL import Image

    rng = np.random.default_rng(0)
    height, width = max(480, card.input_size[-2]), max(640, card.input_size[-1])
    mode = "L" if card.in_chans == 1 else "RGB"
    files = []
    for i in range(count):
        pixels = rng.integers(0, 256, (height, width) if mode == "L" else (height, width, 3), dtype=np.uint8)
        path = folder / f"{i}.jpg"
        Image.fromarray(pixels, mode).save(path, quality=90)
        files.append(path)
    return files


def _available(target: Path, runtime: str) -> str | None:
    """Why ``runtime`` cannot be benchmarked for ``target`` (None when it can)."""
    if runtime in ("torch", "torch.compile"):
        return None if target.is_dir() else "needs the run directory (the trained torch model)"
    if target.is_dir():
        from cnnlab.runtime.predictor import _ARTIFACTS

        if not (target / "export" / _ARTIFACTS[runtime]).is_file():
            return f"not exported (cnnlab export {target} --format ...)"
    return None


def benchmark(
    target: str | Path,
    *,
    runtimes: Sequence[str] = ("all",),
    batch_sizes: Sequence[int] = (1,),
    threads: int | None = None,
    rounds: int = 5,
    runs_per_round: int | None = None,
    end_to_end: bool = True,
    memory: bool = True,
) -> BenchmarkReport:
    """Benchmark a run (its torch model and every exported artifact) or one artifact file."""
    from cnnlab.runtime.backends import physical_cores

    path = Path(target)
    if not path.exists():
        raise CnnlabError(f"{target} does not exist; give a run directory or an exported artifact")
    names = list(RUNTIME_ORDER) if list(runtimes) in (["all"], []) else list(runtimes)
    threads = threads or physical_cores()
    torch.set_num_threads(threads)
    predictors: dict[str, Predictor] = {}
    skipped: dict[str, str] = {}
    for name in names:
        reason = _available(path, name) if path.is_dir() else None
        if reason:
            skipped[name] = reason
            continue
        try:
            predictors[name] = (
                load_predictor(path, runtime=name, threads=threads)
                if path.is_dir()
                else load_predictor(path, threads=threads)
            )
        except CnnlabError as exc:
            skipped[name] = str(exc)
        if not path.is_dir():
            break
    if not predictors:
        raise CnnlabError(f"nothing to benchmark for {target}: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    card = next(iter(predictors.values())).card
    macs = _macs(path, card)
    peak = matmul_peak_gflops(threads)
    report = BenchmarkReport(str(target), list(card.input_size), macs, threads, peak, protocol="")
    report.skipped = skipped
    with tempfile.TemporaryDirectory() as folder:
        files = _jpeg_files(card, max(batch_sizes), Path(folder)) if end_to_end else []
        for batch in batch_sizes:
            report.results += _measure_batch(predictors, card, batch, rounds, runs_per_round, files, macs, peak)
    if memory:
        for result in report.results:
            result.peak_rss_mb, result.runtime_mb = peak_rss_mb(path, result.runtime, result.batch, threads)
    runs = report.results[0].model.runs if report.results else 0
    report.protocol = (
        f"warm-up excluded; {rounds} alternating rounds, {runs} timed runs per runtime and batch; "
        f"{threads} threads; input {'x'.join(map(str, card.input_size))}; model-only on a pre-processed batch; "
        "end-to-end = JPEG decode + pre-processing + model + post-processing; "
        f"fp32 matmul peak measured here: {peak:.0f} GFLOP/s"
    )
    return report


def _measure_batch(
    predictors: dict[str, Predictor],
    card: Any,
    batch: int,
    rounds: int,
    runs_per_round: int | None,
    files: list[Path],
    macs: int | None,
    peak: float,
) -> list[RuntimeResult]:
    inputs = torch.randn(batch, *card.input_size)
    for predictor in predictors.values():  # warm-up: first calls compile, allocate, tune
        for _ in range(3):
            predictor.run(inputs)
    per_round = runs_per_round or _runs_for(predictors, inputs)
    model_samples: dict[str, list[float]] = {n: [] for n in predictors}
    e2e_samples: dict[str, list[float]] = {n: [] for n in predictors}
    for _ in range(rounds):
        for name, predictor in predictors.items():
            settle(lambda p=predictor: p.run(inputs))
            for _ in range(per_round):
                model_samples[name].append(_time(lambda p=predictor: p.run(inputs)))
            if files:
                e2e_samples[name].append(_time(lambda p=predictor: p.predict(files[:batch], batch_size=batch)))
    results = []
    for name in predictors:
        stats = summarize(model_samples[name], warmup=3)
        gflops = 2 * macs * batch / (stats.median_ms / 1000) / 1e9 if macs else None
        results.append(
            RuntimeResult(
                name,
                batch,
                stats,
                summarize(e2e_samples[name], warmup=0) if files else None,
                round(gflops, 1) if gflops else None,
                round(gflops / peak, 3) if gflops else None,
            )
        )
    return results


def _runs_for(predictors: dict[str, Predictor], inputs: torch.Tensor, target_s: float = 0.4) -> int:
    slowest = max(_time(lambda p=p: p.run(inputs)) for p in predictors.values())
    return int(min(50, max(3, target_s / max(slowest, 1e-4))))


def _macs(path: Path, card: Any) -> int | None:
    try:
        from cnnlab.profile.counting import count_macs
        from cnnlab.runs import build_from_card

        model = build_from_card(card)
        return count_macs(model, torch.zeros(1, *card.input_size))[0]
    except Exception:
        return None


# Resident memory is read from /proc (VmRSS now, VmHWM the peak): importing a CUDA build of torch
# briefly peaks higher than any CPU inference, so the runtime's share is the growth of VmRSS.
_RSS_SCRIPT = """
import json, sys, torch
from cnnlab.runtime.predictor import load_predictor
import cnnlab.runs, cnnlab.runtime.backends

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])

target, runtime, batch, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
before = status("VmRSS:")
p = load_predictor(target, runtime=runtime, threads=threads) if runtime != "artifact" else load_predictor(target)
x = torch.randn(batch, *p.card.input_size)
for _ in range(3):
    p.run(x)
print(json.dumps({"peak_kb": status("VmHWM:"), "before_kb": before, "after_kb": status("VmRSS:")}))
"""


def peak_rss_mb(target: Path, runtime: str, batch: int, threads: int) -> tuple[float | None, float | None]:
    """(peak resident MB of a fresh process that loads ``runtime`` and runs the model at ``batch``,
    and how much of it the runtime and model added on top of the interpreter with torch imported)."""
    arg = runtime if target.is_dir() else "artifact"
    try:
        out = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, str(target), arg, str(batch), str(threads)],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        data = json.loads(out.stdout.strip().splitlines()[-1])
        return round(data["peak_kb"] / 1024, 1), round((data["after_kb"] - data["before_kb"]) / 1024, 1)
    except (subprocess.SubprocessError, ValueError, IndexError, KeyError):
        return None, None
