"""Printing for the CLI: tables and progress for people on stderr/stdout, one JSON document for machines."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

# Off a terminal (logs, CI, pipes) rich would assume 80 columns and fold every table; give it a page.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def print_json(data: Any) -> None:
    """Exactly one JSON document on stdout."""
    from cnnlab.runs.atomic import _jsonable

    sys.stdout.write(json.dumps(data, indent=2, default=_jsonable) + "\n")
    sys.stdout.flush()


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def human_count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def step_log(json_out: bool) -> Any:
    """Where a long workflow reports its steps: dim lines on stderr, or nowhere under --json."""
    if json_out:
        return None
    return lambda line: err_console.print(f"[dim]{line}[/]", soft_wrap=True)
