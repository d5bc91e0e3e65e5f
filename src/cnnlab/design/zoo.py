"""cnnlab's zoo: the classic networks written as specs (YAML files beside this module), registered
by name when cnnlab's own models load."""

from __future__ import annotations

from pathlib import Path

from cnnlab.design.build import register_spec
from cnnlab.design.spec import load_spec
from cnnlab.registry.papers import paper_of

ZOO = Path(__file__).with_name("zoo")


def register_zoo() -> list[str]:
    names = []
    for path in sorted(ZOO.glob("*.yaml")):
        spec = load_spec(path)
        if spec.paper is None:
            spec.paper, spec.year = paper_of(spec.family)
        register_spec(spec, source="cnnlab")
        names.append(spec.name)
    return names
