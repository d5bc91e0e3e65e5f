"""Everything `cnnlab train` can be asked, in one typed, JSON-serialisable place.

Values left as None are decided by the recipe (learning rate, optimizer, epochs...) and the
decision is written back into run.json, so a run records what it actually did.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cnnlab.errors import ConfigError

RECIPES = ("auto", "scratch", "linear-probe", "finetune", "gradual", "recover")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "onecycle", "constant")
IMBALANCE = ("auto", "none", "weighted-loss", "balanced-sampler")
NONFINITE = ("stop", "rollback")
DATA_PATHS = ("auto", "memory", "loader")


def parse_duration(text: str | float | int | None) -> float | None:
    """'90s', '10m', '1.5h', '1h30m' or a number of seconds -> seconds."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms]?)", text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s+", "", text.strip().lower()):
        raise ConfigError(f"--budget {text!r}: write a duration like 90s, 10m, 1.5h or 1h30m")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}
    return sum(float(n) * scale[u] for n, u in parts)


@dataclass
class TrainConfig:
    data: str
    model: str
    task: str | None = None
    pretrained: bool | str = False
    recipe: str = "auto"
    epochs: int | None = None
    budget_s: float | None = None
    batch_size: int = 64
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup_epochs: float | None = None
    layer_decay: float | None = None
    label_smoothing: float | None = None
    mixup: float = 0.0
    cutmix: float = 0.0
    augment: str = "light"
    hflip: bool | None = None
    random_erasing: float = 0.0
    ema: bool = False
    ema_decay: float = 0.999
    grad_clip: float | None = None
    grad_accum: int = 1
    channels_last: bool | None = None
    amp: str = "auto"
    seed: int = 0
    deterministic: bool = False
    workers: int | None = None
    data_path: str = "auto"
    imbalance: str = "auto"
    early_stop: int | None = None
    checkpoint_every_s: float = 300.0
    input_size: list[int] | None = None
    device: str = "auto"
    nonfinite: str = "stop"
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    train_per_class: int | None = None  # few-shot: at most N training images per class (seeded choice)
    distill_from: str | None = None  # a teacher run: knowledge distillation
    distill_temperature: float = 4.0
    distill_alpha: float = 0.7  # weight of the teacher's term
    loss: str | None = None  # segmentation: ce, dice, focal, ce+dice (default), focal+dice
    model_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        choices = {
            "recipe": RECIPES,
            "schedule": SCHEDULES,
            "imbalance": IMBALANCE,
            "nonfinite": NONFINITE,
            "data_path": DATA_PATHS,
            "amp": ("auto", "off", "bf16", "fp16"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"--{name.replace('_', '-')} {getattr(self, name)!r}: choose one of {', '.join(allowed)}"
                )
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"--epochs must be at least 1, got {self.epochs}")
        if self.budget_s is not None and self.budget_s <= 0:
            raise ConfigError(f"--budget must be positive, got {self.budget_s}s")
        for name in ("batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.lr is not None and self.lr <= 0:
            raise ConfigError(f"--lr must be positive, got {self.lr}")
        for name in ("mixup", "cutmix", "random_erasing"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must not be negative")
        if self.random_erasing > 1:
            raise ConfigError("--random-erasing is a probability in [0, 1]")
        if self.train_per_class is not None and self.train_per_class < 1:
            raise ConfigError(f"--train-per-class must be at least 1, got {self.train_per_class}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ConfigError(f"--layer-decay must be in (0, 1], got {self.layer_decay}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
