"""Errors meant for users.

Every `CnnlabError` carries a message that names the file, field or layer involved and says what to
do. The CLI prints it on one line and exits with status 2; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class CnnlabError(Exception):
    """A problem with what the user asked for or gave us (not a bug in cnnlab)."""


class UnknownModelError(CnnlabError, KeyError):
    """No registry entry has this name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateModelError(CnnlabError):
    """A registry name is registered twice."""


class ConfigError(CnnlabError, ValueError):
    """An option has a wrong type or value."""


class CheckpointError(CnnlabError):
    """A weights file or run directory cannot be read."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle file that would need arbitrary code execution to load."""


class DataError(CnnlabError):
    """A dataset cannot be read or has nothing usable."""


class MissingDependencyError(CnnlabError, ImportError):
    """An optional dependency is needed for this feature."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(f"{feature} needs the optional package '{package}': pip install 'cnnlab[{extra}]'")
        self.package = package
        self.extra = extra


def suggest(name: str, candidates: list[str] | tuple[str, ...], n: int = 5) -> str:
    """A 'did you mean' phrase for an unknown name, or '' when nothing is close."""
    import difflib

    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    if not close:
        lowered = name.lower()
        close = [c for c in candidates if lowered in c.lower()][:n]
    return f"; did you mean {', '.join(close)}?" if close else ""
