"""A SPEC argument: a YAML file, or the name of a spec in the registry (cnnlab's zoo or one built earlier)."""

from __future__ import annotations

from pathlib import Path

from cnnlab.design.spec import NetworkSpec, load_spec
from cnnlab.errors import ConfigError


def resolve_spec(target: str) -> NetworkSpec:
    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return load_spec(path)
    from cnnlab.registry import create_model, get_entry

    entry = get_entry(target)
    model = create_model(target)
    if not hasattr(model, "spec_dict"):
        raise ConfigError(
            f"{target} is a {entry.source} model, not a design spec; give a .yaml file or a spec name "
            "(cnnlab models list --source cnnlab)"
        )
    return NetworkSpec.from_dict(model.spec_dict, origin=target)


def parse_design_input(text: str, spec: NetworkSpec) -> list[int]:
    """'3x224x224' or '1x3x224x224' (a leading batch of 1 is allowed) -> [C, *spatial]."""
    from cnnlab.registry.targets import parse_input_size

    try:
        dims = [int(v) for v in text.lower().split("x") if v]
    except ValueError:
        dims = []
    if len(dims) == spec.spatial_dims + 2 and dims[0] == 1:
        dims = dims[1:]
    if len(dims) != spec.spatial_dims + 1:
        raise ConfigError(
            f"--input {text!r}: {spec.name} is {spec.spatial_dims}D, so give C"
            + "x".join([""] + ["S"] * spec.spatial_dims)
            + " (optionally with a leading 1x)"
        )
    return list(parse_input_size("x".join(map(str, dims))))
