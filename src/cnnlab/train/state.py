"""Where a training run is: everything needed to resume it exactly, as plain JSON values."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # batches done in the current epoch (mid-epoch resume)
    step: int = 0  # optimizer steps
    samples: int = 0  # training samples seen
    elapsed_s: float = 0.0  # training wall time, summed over resumes
    lr: float = 0.0
    lr_multiplier: float = 1.0  # lowered by the non-finite guard's rollback
    best_metric: float | None = None
    best_epoch: int | None = None
    phase: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per epoch: metrics.csv
    events: list[dict[str, Any]] = field(default_factory=list)  # non-finite losses, rollbacks, phase changes
    stop_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
