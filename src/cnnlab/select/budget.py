"""The deployment budget: latency, size and memory ceilings, parsed from what people write."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.select.measure import Cost

_TIME = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "": 1.0}
_BYTES = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "": 1e6}


def _parse(text: str | float | None, units: dict[str, float], flag: str, example: str) -> float | None:
    if text is None:
        return None
    if isinstance(text, (int, float)):
        value, unit = float(text), ""
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
        if not match or match.group(2).lower() not in units:
            raise ConfigError(f"{flag} {text!r}: write a number with a unit, e.g. {example}")
        value, unit = float(match.group(1)), match.group(2).lower()
    if value <= 0:
        raise ConfigError(f"{flag} must be positive, got {text!r}")
    return value * units[unit]


def parse_latency_ms(text: str | float | None) -> float | None:
    """'5ms', '0.5s', '800us' or a number of milliseconds."""
    return _parse(text, _TIME, "--max-latency", "5ms or 0.2s")


def parse_bytes(text: str | float | None, flag: str = "--max-size") -> int | None:
    """'20MB', '512KiB', '1.5GB' or a number of megabytes."""
    value = _parse(text, _BYTES, flag, "20MB or 512KiB")
    return None if value is None else int(value)


@dataclass(frozen=True)
class Budget:
    max_latency_ms: float | None = None
    max_size_bytes: int | None = None
    max_memory_bytes: int | None = None

    def violations(self, cost: Cost) -> list[str]:
        """Why ``cost`` is outside the budget, one phrase per ceiling it breaks (empty: it fits)."""
        found = []
        if self.max_latency_ms is not None and cost.promised_ms is not None and cost.promised_ms > self.max_latency_ms:
            found.append(f"latency {cost.promised_ms:.2f} ms > {self.max_latency_ms:g} ms")
        if self.max_size_bytes is not None and cost.size_bytes > self.max_size_bytes:
            found.append(f"size {cost.size_bytes / 1e6:.1f} MB > {self.max_size_bytes / 1e6:g} MB")
        if self.max_memory_bytes is not None and cost.memory_bytes > self.max_memory_bytes:
            found.append(f"activation memory {cost.memory_bytes / 1e6:.1f} MB > {self.max_memory_bytes / 1e6:g} MB")
        return found

    def overshoot(self, cost: Cost) -> float:
        """How far outside the budget, as the largest ratio to a ceiling (1.0 or less: inside)."""
        ratios = [1.0]
        if self.max_latency_ms and cost.promised_ms is not None:
            ratios.append(cost.promised_ms / self.max_latency_ms)
        if self.max_size_bytes:
            ratios.append(cost.size_bytes / self.max_size_bytes)
        if self.max_memory_bytes:
            ratios.append(cost.memory_bytes / self.max_memory_bytes)
        return max(ratios)

    def describe(self) -> str:
        parts = []
        if self.max_latency_ms is not None:
            parts.append(f"latency <= {self.max_latency_ms:g} ms")
        if self.max_size_bytes is not None:
            parts.append(f"size <= {self.max_size_bytes / 1e6:g} MB")
        if self.max_memory_bytes is not None:
            parts.append(f"activation memory <= {self.max_memory_bytes / 1e6:g} MB")
        return ", ".join(parts) or "no ceiling"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
