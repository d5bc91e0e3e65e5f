"""Learning-rate schedules as a function of training progress in [0, 1].

Progress is the larger of (steps done / steps planned) and (time spent / time budget), so the same
schedule serves `--epochs` and `--budget`: with a budget, cosine decay ends when the time does.
"""

from __future__ import annotations

import math

from cnnlab.errors import ConfigError


def lr_factor(progress: float, kind: str = "cosine", warmup: float = 0.0, final: float = 0.0) -> float:
    """Multiplier of the base learning rate at ``progress`` (0 = start, 1 = end)."""
    p = min(max(progress, 0.0), 1.0)
    if kind == "onecycle":
        # Smith & Topin 2018: ramp up to the peak over the first 25% (or the warm-up), then anneal.
        peak = warmup if warmup > 0 else 0.25
        if p < peak:
            return 0.04 + 0.96 * p / peak
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * (p - peak) / (1 - peak)))
    if warmup > 0 and p < warmup:
        return max(p / warmup, 1e-3)
    if kind == "constant":
        return 1.0
    if kind == "cosine":
        q = (p - warmup) / (1 - warmup) if warmup < 1 else 1.0
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * q))
    raise ConfigError(f"unknown schedule {kind!r}")
