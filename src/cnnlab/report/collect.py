"""What a report shows of a run, read from its run directory and nothing else."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError


@dataclass
class RunSummary:
    path: Path
    record: dict[str, Any]  # run.json
    card: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)  # metrics.csv
    metrics: dict[str, Any] = field(default_factory=dict)  # metrics.json
    parity: dict[str, Any] = field(default_factory=dict)  # export/parity.json
    compression: dict[str, Any] = field(default_factory=dict)  # compression.json
    selection: dict[str, Any] = field(default_factory=dict)  # select.json
    profile: dict[str, Any] = field(default_factory=dict)  # profile.json
    images: dict[str, Path] = field(default_factory=dict)  # figures the run already drew

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def command(self) -> str:
        return str(self.record.get("command", "train"))


def _number(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); re-run the command that wrote it") from None
    return data if isinstance(data, dict) else {}


def collect(path: str | Path) -> RunSummary:
    """Everything a report can show of the run at ``path``; a folder that is not a run is refused."""
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"{folder} does not exist or is not a directory; give a run directory (runs/<name>)")
    record = _json(folder / "run.json")
    if not record:
        raise ConfigError(f"{folder} has no run.json, so it is not a cnnlab run directory")
    history: list[dict[str, float]] = []
    metrics_csv = folder / "metrics.csv"
    if metrics_csv.is_file():
        with metrics_csv.open(newline="", encoding="utf-8") as handle:
            history = [{k: _number(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]
    images = {
        name: folder / f"{name}.png"
        for name in ("confusion_matrix", "compression", "pareto", "cam_samples")
        if (folder / f"{name}.png").is_file()
    }
    return RunSummary(
        path=folder,
        record=record,
        card=_json(folder / "card.json"),
        history=history,
        metrics=_json(folder / "metrics.json"),
        parity=_json(folder / "export" / "parity.json"),
        compression=_json(folder / "compression.json"),
        selection=_json(folder / "select.json"),
        profile=_json(folder / "profile.json"),
        images=images,
    )
