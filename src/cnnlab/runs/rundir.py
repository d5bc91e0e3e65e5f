"""The run directory every command reads and writes (see DESIGN.md)."""

from __future__ import annotations

import csv
import io
import re
import shutil
import time
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.runs.atomic import atomic_write_json, atomic_write_text

RUNS_ROOT = Path("runs")


def next_run_path(verb: str, root: Path = RUNS_ROOT) -> Path:
    """runs/<verb>-<n> with the first free n."""
    pattern = re.compile(rf"^{re.escape(verb)}-(\d+)$")
    taken = [int(m.group(1)) for p in root.glob(f"{verb}-*") if (m := pattern.match(p.name))]
    return root / f"{verb}-{max(taken, default=0) + 1}"


class RunDir:
    """A run directory: run.json (what was asked, what came out), metrics, artifacts."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, out: str | Path | None, verb: str, *, overwrite: bool = False) -> RunDir:
        """A new, empty run directory. An existing non-empty one is refused unless ``overwrite``."""
        path = Path(out) if out else next_run_path(verb)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--out {path} is a file, not a directory")
        if path.is_dir() and any(path.iterdir()):
            if not overwrite:
                raise ConfigError(
                    f"--out {path} already holds a run; choose another --out, pass --overwrite to replace "
                    "it, or --resume it"
                )
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, data: Any) -> Path:
        return atomic_write_json(self.path / name, data)

    def read_json(self, name: str) -> dict[str, Any]:
        import json

        file = self.path / name
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}

    def update_run_json(self, **fields: Any) -> dict[str, Any]:
        record = self.read_json("run.json")
        record.update(fields)
        record["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.write_json("run.json", record)
        return record

    def write_metrics_csv(self, rows: list[dict[str, Any]], name: str = "metrics.csv") -> Path:
        """Rewrite metrics.csv whole (atomically): a crash never leaves a torn row."""
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return atomic_write_text(self.path / name, buffer.getvalue())
