"""The registry: one name space over several sources, each loaded only when it is needed.

Sources are consulted in order. cnnlab's own families and the static torchvision table cost
nothing to load; timm is imported (seconds) only when a name is not found before it, or when every
entry is listed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cnnlab.errors import DuplicateModelError, UnknownModelError, suggest
from cnnlab.registry.entry import ModelEntry

SourceLoader = Callable[["Registry"], None]


class Registry:
    def __init__(self) -> None:
        self._entries: dict[str, ModelEntry] = {}
        self._pending: list[tuple[str, SourceLoader]] = []
        self._loaded: list[str] = []

    def add_source(self, name: str, loader: SourceLoader) -> None:
        """Add a source whose entries are registered the first time they are needed."""
        self._pending.append((name, loader))

    def register(self, entry: ModelEntry) -> ModelEntry:
        existing = self._entries.get(entry.name)
        if existing is not None:
            raise DuplicateModelError(
                f"model name {entry.name!r} is registered twice: by {existing.source} "
                f"(family {existing.family}) and by {entry.source} (family {entry.family}); "
                "give one of them another name"
            )
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove an entry (used when a user's design spec is rebuilt under the same name)."""
        self._entries.pop(name, None)

    def _load_next(self) -> bool:
        if not self._pending:
            return False
        name, loader = self._pending.pop(0)
        loader(self)
        self._loaded.append(name)
        return True

    def load_all(self) -> None:
        while self._load_next():
            pass

    def get(self, name: str) -> ModelEntry:
        """The entry for ``name``; a timm pretrained tag (``resnet50.a1_in1k``) is accepted."""
        arch = name.split(".", 1)[0]
        while arch not in self._entries and self._load_next():
            pass
        entry = self._entries.get(arch)
        if entry is None:
            hint = suggest(arch, list(self._entries))
            raise UnknownModelError(
                f"unknown model {name!r}{hint} (`cnnlab models list --pattern '*{arch[:4]}*'` searches "
                "the registry; a design spec is given as a path to a .yaml file)"
            )
        return entry

    def __contains__(self, name: str) -> bool:
        try:
            self.get(name)
        except UnknownModelError:
            return False
        return True

    def __iter__(self) -> Iterator[ModelEntry]:
        self.load_all()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        self.load_all()
        return len(self._entries)

    @property
    def loaded_sources(self) -> tuple[str, ...]:
        return tuple(self._loaded)
