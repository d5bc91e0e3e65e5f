"""Latency with a stated protocol: warm-up excluded, N timed runs, min / median / p95.

Runtimes plug in through ``LATENCY_BACKENDS``: a backend turns (model, example) into a callable
that runs one inference. The export issue adds ONNX Runtime, OpenVINO and TFLite backends.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import torch
from torch import nn

from cnnlab.errors import ConfigError


@dataclass(frozen=True)
class LatencyStats:
    runs: int
    warmup: int
    min_ms: float
    median_ms: float
    p95_ms: float
    mean_ms: float
    stdev_ms: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarize(samples_s: list[float], warmup: int) -> LatencyStats:
    ms = sorted(s * 1000.0 for s in samples_s)
    p95_index = min(len(ms) - 1, max(0, round(0.95 * (len(ms) - 1))))
    return LatencyStats(
        runs=len(ms),
        warmup=warmup,
        min_ms=ms[0],
        median_ms=statistics.median(ms),
        p95_ms=ms[p95_index],
        mean_ms=statistics.fmean(ms),
        stdev_ms=statistics.stdev(ms) if len(ms) > 1 else 0.0,
    )


def time_callable(
    fn: Callable[[], object],
    *,
    warmup: int = 3,
    runs: int | None = None,
    target_seconds: float = 1.5,
    min_runs: int = 5,
    max_runs: int = 100,
) -> LatencyStats:
    """Time ``fn``. Without ``runs``, as many runs as fit ``target_seconds`` (within min/max)."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    deadline = None if runs else time.perf_counter() + target_seconds
    limit = runs or max_runs
    while len(samples) < limit:
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
        if deadline is not None and len(samples) >= min_runs and time.perf_counter() > deadline:
            break
    return summarize(samples, warmup)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def torch_eager(model: nn.Module, example: torch.Tensor) -> Callable[[], object]:
    model.eval()

    def run() -> object:
        with torch.inference_mode():
            return model(example)

    return run


LATENCY_BACKENDS: dict[str, Callable[[nn.Module, torch.Tensor], Callable[[], object]]] = {
    "torch": torch_eager,
}


def backend(name: str) -> Callable[[nn.Module, torch.Tensor], Callable[[], object]]:
    if name not in LATENCY_BACKENDS:
        raise ConfigError(f"unknown runtime {name!r} for profiling; available: {', '.join(LATENCY_BACKENDS)}")
    return LATENCY_BACKENDS[name]


SETTLE_S = 0.05


def settle(fn: Callable[[], object]) -> None:
    """Hand the cores to the next contender: ONNX Runtime's and OpenMP's worker threads spin-wait
    for a while after each call, and on a 2-core machine they steal the next runtime's cores. Measured
    here: OpenVINO's first three runs right after ONNX Runtime took 25, 20 and 16 ms against 5 ms
    settled, which moved a 5-run median from 4.6 to 7.2 ms. A short sleep lets them park; one untimed
    call brings the next runtime's own threads back."""
    time.sleep(SETTLE_S)
    fn()


def alternating_medians(
    fns: dict[str, Callable[[], object]], *, rounds: int = 8, runs: int = 5, warmup: int = 3
) -> dict[str, LatencyStats]:
    """Time several callables in alternating rounds, so machine noise affects them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            settle(fn)
            for _ in range(runs):
                start = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - start)
    return {name: summarize(values, warmup) for name, values in samples.items()}
