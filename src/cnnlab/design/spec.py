"""Network specs: typed dataclasses, read from and written to YAML.

    name: resnet18_cbam
    input_size: [3, 224, 224]         # C, then the spatial sizes (1, 2 or 3 of them)
    num_classes: 1000
    norm: batch                       # or {type: batch, eps: 0.001}
    act: relu
    stem:
      - {block: conv, out: 64, kernel: 7, stride: 2}
      - {block: pool, kind: max, kernel: 3, stride: 2, padding: 1}
    stages:
      - {block: basic, out: 64, repeats: 2, attn: cbam}
      - {block: basic, out: 128, repeats: 2, stride: 2, attn: cbam}
    head: {type: classifier, dropout: 0.2}

A segmentation head turns the stem and stages into the encoder of a segmenter (task segment),
in 1D, 2D or 3D: ``head: {type: unet, width: 16}`` (U-Net's expanding path with skip connections
down to stride 1), ``{type: deeplabv3plus, width: 64, rates: [2, 3, 4]}`` (ASPP on the deepest
map, fused with the stride-4 map) or ``{type: fpn, width: 64}`` (Panoptic FPN's semantic branch).

A stage repeats one block; the first repeat takes the stride and the channel change. Keys other
than block/out/repeats/stride/name are the block's options (checked against the block's list).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from cnnlab.errors import ConfigError

SEGMENT_HEADS = ("unet", "deeplabv3plus", "fpn")
HEAD_TYPES = ("classifier", "mlp", "embedding", "none", *SEGMENT_HEADS)
_STAGE_KEYS = ("block", "out", "repeats", "stride", "name")


@dataclass
class StageSpec:
    block: str
    out: int | None = None
    repeats: int = 1
    stride: int = 1
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> StageSpec:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping like {{block: conv, out: 64}}, got {data!r}")
        if "block" not in data:
            raise ConfigError(f"{where} lacks field 'block' (the block type, e.g. conv, basic, bottleneck, mbconv)")
        for key in ("out", "repeats", "stride"):
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{where} field '{key}' must be a positive integer, got {value!r}")
        return cls(
            block=str(data["block"]),
            out=data.get("out"),
            repeats=data.get("repeats", 1),
            stride=data.get("stride", 1),
            name=data.get("name"),
            options={k: v for k, v in data.items() if k not in _STAGE_KEYS},
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"block": self.block}
        if self.name:
            out["name"] = self.name
        if self.out is not None:
            out["out"] = self.out
        if self.repeats != 1:
            out["repeats"] = self.repeats
        if self.stride != 1:
            out["stride"] = self.stride
        out.update(self.options)
        return out


@dataclass
class HeadSpec:
    type: str = "classifier"
    pool: str = "avg"
    dropout: float = 0.0
    hidden: list[int] = field(default_factory=list)  # mlp: hidden layer widths
    pool_size: int | None = None  # mlp: adaptive pooling output side (VGG 7, AlexNet 6)
    dim: int | None = None  # embedding: output dimension
    width: int | None = None  # segmentation heads: decoder channels (U-Net: at its last, stride-1 level)
    rates: list[int] = field(default_factory=list)  # deeplabv3plus: ASPP dilation rates

    @classmethod
    def from_dict(cls, data: Any) -> HeadSpec:
        if data is None:
            return cls()
        if isinstance(data, str):
            data = {"type": data}
        if not isinstance(data, dict):
            raise ConfigError(f"head: expected a mapping like {{type: classifier}}, got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"head: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        head = cls(**data)
        if head.type not in HEAD_TYPES:
            raise ConfigError(f"head field 'type' is {head.type!r}; choose one of {', '.join(HEAD_TYPES)}")
        if head.type == "embedding" and not head.dim:
            raise ConfigError("head of type embedding needs field 'dim' (the embedding size, e.g. 128)")
        if head.width is not None and (
            isinstance(head.width, bool) or not isinstance(head.width, int) or head.width < 1
        ):
            raise ConfigError(f"head field 'width' must be a positive integer, got {head.width!r}")
        if head.rates and (
            not isinstance(head.rates, list) or not all(isinstance(r, int) and r >= 1 for r in head.rates)
        ):
            raise ConfigError(f"head field 'rates' must be a list of positive integers, got {head.rates!r}")
        if head.rates and head.type != "deeplabv3plus":
            raise ConfigError(f"head field 'rates' belongs to a deeplabv3plus head, not {head.type}")
        if head.width is not None and head.type not in SEGMENT_HEADS:
            raise ConfigError(
                f"head field 'width' sets a segmentation decoder ({', '.join(SEGMENT_HEADS)}), not a {head.type} head"
            )
        return head

    @property
    def segments(self) -> bool:
        return self.type in SEGMENT_HEADS

    def to_dict(self) -> dict[str, Any]:
        defaults = HeadSpec()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(defaults, f.name) or f.name == "type"
        }


@dataclass
class NetworkSpec:
    name: str
    input_size: list[int]
    stages: list[StageSpec]
    stem: list[StageSpec] = field(default_factory=list)
    head: HeadSpec = field(default_factory=HeadSpec)
    num_classes: int = 1000
    task: str = "classify"
    norm: str | dict[str, Any] = "batch"
    act: str = "relu"
    drop_path_rate: float = 0.0
    zero_init_residual: bool = False
    family: str = "design"
    paper: str | None = None
    year: int | None = None
    description: str = ""
    mean: list[float] | None = None
    std: list[float] | None = None

    @property
    def spatial_dims(self) -> int:
        return len(self.input_size) - 1

    @property
    def in_chans(self) -> int:
        return self.input_size[0]

    @classmethod
    def from_dict(cls, data: Any, origin: str = "spec") -> NetworkSpec:
        if not isinstance(data, dict):
            raise ConfigError(f"{origin}: a network spec is a mapping with name, input_size, stages")
        for key in ("name", "input_size", "stages"):
            if key not in data:
                raise ConfigError(f"{origin} lacks field '{key}'")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{origin}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        size = data["input_size"]
        if (
            not isinstance(size, list)
            or not 2 <= len(size) <= 4
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        ):
            raise ConfigError(
                f"{origin} field 'input_size' must be [C, L], [C, H, W] or [C, D, H, W] "
                f"with positive integers, got {size!r}"
            )
        stages = data["stages"]
        if not isinstance(stages, list) or not stages:
            raise ConfigError(f"{origin} field 'stages' must be a non-empty list of stages")
        stem = data.get("stem") or []
        if not isinstance(stem, list):
            raise ConfigError(f"{origin} field 'stem' must be a list of layers")
        values = {k: v for k, v in data.items() if k in known}
        values["stem"] = [StageSpec.from_dict(s, f"stem layer {i}") for i, s in enumerate(stem)]
        values["stages"] = [StageSpec.from_dict(s, f"stage {i}") for i, s in enumerate(stages)]
        values["head"] = HeadSpec.from_dict(data.get("head"))
        if values["head"].segments:
            if values.setdefault("task", "segment") != "segment":
                raise ConfigError(
                    f"{origin}: a {values['head'].type} head segments, but field 'task' says {values['task']!r}; "
                    "drop 'task' or set it to segment"
                )
        elif values.get("task") == "segment":
            raise ConfigError(
                f"{origin}: task segment needs a segmentation head ({', '.join(SEGMENT_HEADS)}), "
                f"not {values['head'].type}"
            )
        spec = cls(**values)
        if not isinstance(spec.num_classes, int) or spec.num_classes < 0:
            raise ConfigError(f"{origin} field 'num_classes' must be a non-negative integer, got {spec.num_classes!r}")
        return spec

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "input_size": list(self.input_size), "num_classes": self.num_classes}
        for key, default in _OPTIONAL_DEFAULTS.items():
            if getattr(self, key) != default:
                out[key] = getattr(self, key)
        if self.stem:
            out["stem"] = [s.to_dict() for s in self.stem]
        out["stages"] = [s.to_dict() for s in self.stages]
        out["head"] = self.head.to_dict()
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=120)


_OPTIONAL_DEFAULTS: dict[str, Any] = {
    "task": "classify",
    "norm": "batch",
    "act": "relu",
    "drop_path_rate": 0.0,
    "zero_init_residual": False,
    "family": "design",
    "paper": None,
    "year": None,
    "description": "",
    "mean": None,
    "std": None,
}


def load_spec(path: str | Path) -> NetworkSpec:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"design spec {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"design spec {path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return NetworkSpec.from_dict(data, origin=str(path))
