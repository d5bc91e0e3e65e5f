"""Profile a model, design spec or run: parameters, MACs, activation memory, size, latency.

report = cnnlab.profile_model("resnet50", batch_sizes=(1, 32))
report.to_dict()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnlab.env import hardware, versions
from cnnlab.errors import ConfigError
from cnnlab.profile.counting import count_macs, count_params, size_bytes
from cnnlab.profile.latency import LatencyStats, backend, time_callable, torch_threads
from cnnlab.profile.memory import peak_activation_bytes
from cnnlab.registry.targets import resolve_target

__all__ = ["BatchProfile", "ProfileReport", "profile_many", "profile_model"]


@dataclass
class BatchProfile:
    batch: int
    activation_bytes: int
    latency: dict[str, LatencyStats] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "activation_bytes": self.activation_bytes,
            "latency": {k: v.to_dict() for k, v in self.latency.items()},
        }


@dataclass
class ProfileReport:
    name: str
    kind: str
    input_size: tuple[int, ...]
    params: int
    trainable_params: int
    macs: int  # per sample
    size: dict[str, int]
    batches: list[BatchProfile]
    threads: int
    protocol: str
    hardware: dict[str, Any] = field(default_factory=hardware)
    versions: dict[str, str] = field(default_factory=versions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "input_size": list(self.input_size),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "gmacs": round(self.macs / 1e9, 4),
            "size_bytes": self.size,
            "batches": [b.to_dict() for b in self.batches],
            "threads": self.threads,
            "protocol": self.protocol,
            "hardware": self.hardware,
            "versions": self.versions,
        }


def _example(model: nn.Module, batch: int, input_size: tuple[int, ...]) -> torch.Tensor:
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    return torch.randn(batch, *input_size, dtype=dtype)


def profile_model(
    target: str | nn.Module,
    *,
    batch_sizes: Sequence[int] = (1,),
    input_size: Sequence[int] | None = None,
    runtimes: Sequence[str] = ("torch",),
    threads: int | None = None,
    warmup: int = 3,
    runs: int | None = None,
    target_seconds: float = 1.5,
    latency: bool = True,
) -> ProfileReport:
    """Measure one model on this machine.

    Args:
        target: registry name, design spec path, run directory, or an nn.Module (needs input_size).
        batch_sizes: latency and memory are measured at each.
        input_size: (C, H, W) etc.; the model's default when None.
        runtimes: latency backends ("torch" now; exported runtimes plug in later).
        threads: intra-op threads for the measurement; torch's default when None.
        runs: timed runs per measurement; adaptive (to fit target_seconds) when None.
        latency: False skips timing (counts and memory only).
    """
    if not batch_sizes or any(int(b) < 1 for b in batch_sizes):
        raise ConfigError(f"batch sizes must be positive integers, got {list(batch_sizes)}")
    resolved = resolve_target(target, tuple(input_size) if input_size else None)
    model = resolved.model.eval()
    params = count_params(model)
    try:
        macs, _ = count_macs(model, _example(model, 1, resolved.input_size))
    except RuntimeError as exc:
        raise ConfigError(
            f"{resolved.name} cannot run on input {'x'.join(map(str, resolved.input_size))}: "
            f"{str(exc).splitlines()[0]}; choose another --input"
        ) from None
    batches = []
    with torch_threads(threads) as used_threads:
        for batch in batch_sizes:
            example = _example(model, int(batch), resolved.input_size)
            result = BatchProfile(int(batch), peak_activation_bytes(model, example))
            if latency:
                for runtime in runtimes:
                    run = backend(runtime)(model, example)
                    result.latency[runtime] = time_callable(
                        run, warmup=warmup, runs=runs, target_seconds=target_seconds
                    )
            batches.append(result)
    protocol = (
        f"{warmup} warm-up runs excluded; "
        + (f"{runs} timed runs" if runs else f"timed runs for ~{target_seconds:g}s (5-100)")
        + f"; {used_threads} threads; random input; inference mode"
    )
    return ProfileReport(
        name=resolved.name,
        kind=resolved.kind,
        input_size=resolved.input_size,
        params=params.total,
        trainable_params=params.trainable,
        macs=macs,
        size=size_bytes(model),
        batches=batches,
        threads=used_threads,
        protocol=protocol,
    )


def profile_many(targets: Sequence[str], **kwargs: Any) -> list[ProfileReport]:
    return [profile_model(t, **kwargs) for t in targets]
