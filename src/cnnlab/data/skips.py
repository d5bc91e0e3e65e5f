"""What was left out of a dataset, and why: files are skipped and counted, never allowed to crash a run.

Two records exist. ``SkipReport`` collects what the scan at open time left out; it travels with the
dataset bundle into ``describe()`` and the run directory. A file that goes bad *after* the scan is
found by a DataLoader worker, whose memory the main process never sees, so it is appended to a
shared JSON-lines file instead (``append_skip_log``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_EXAMPLES = 50
# One write(2) of at most PIPE_BUF bytes with O_APPEND lands whole, even when several worker
# processes append at once (on local POSIX file systems; NFS gives no such promise).
_MAX_LOG_LINE = 4096


@dataclass
class SkipReport:
    """Counts of skipped items by reason, plus the first few examples.

    Reasons used by the readers: "missing file", "unreadable", "empty file", "not an image",
    "truncated", "corrupt", "too large", "size changed", "empty class", "empty label",
    "empty path", "unknown split".
    """

    counts: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, str]] = field(default_factory=list)
    max_examples: int = MAX_EXAMPLES

    def add(self, file: str | os.PathLike[str], reason: str, detail: str = "") -> None:
        """Count one skipped item; keep it as an example while fewer than ``max_examples`` are kept."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if len(self.examples) < self.max_examples:
            self.examples.append({"file": str(file), "reason": reason, "detail": detail})

    def merge(self, other: SkipReport) -> None:
        for reason, count in other.counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + count
        room = self.max_examples - len(self.examples)
        self.examples.extend(other.examples[: max(room, 0)])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """``"3 not an image, 2 truncated"``, most frequent first; ``"nothing skipped"`` when empty."""
        if not self.counts:
            return "nothing skipped"
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return ", ".join(f"{count} {reason}" for reason, count in ranked)

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "counts": dict(self.counts), "examples": [dict(e) for e in self.examples]}


def append_skip_log(log: str | os.PathLike[str], file: str, reason: str, detail: str) -> None:
    """Append one JSON line ``{"file", "reason", "detail"}`` to ``log``; safe from many processes.

    A failure to write the log is swallowed: losing a log line must not stop training either.
    """
    # Capping the fields keeps the line under _MAX_LOG_LINE bytes: a character costs at most 6 bytes
    # once JSON-escaped (a control character as \u0000) or UTF-8 encoded (4), and 650 * 6 < 4096 - 40.
    record = {"file": _cap(file, 300, keep_end=True), "reason": _cap(reason, 50), "detail": _cap(detail, 300)}
    line = json.dumps(record, ensure_ascii=False) + "\n"
    try:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        return
    try:
        os.write(fd, line.encode("utf-8"))
    except OSError:
        pass
    finally:
        os.close(fd)


def _cap(text: str, limit: int, keep_end: bool = False) -> str:
    if len(text) <= limit:
        return text
    return "..." + text[3 - limit :] if keep_end else text[: limit - 3] + "..."  # a path's end names the file
