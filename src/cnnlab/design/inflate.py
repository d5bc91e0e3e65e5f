"""Inflating a 2D network into the 3D network of the same spec (Carreira & Zisserman 2017, I3D).

Each 2D kernel is repeated along the new depth axis and divided by its depth, so a volume whose
slices are all the same image gives exactly the 2D network's response: ImageNet-pretrained filters
become a starting point for CT and MRI volumes.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from cnnlab.design.network import DesignedNet
from cnnlab.design.spec import NetworkSpec
from cnnlab.errors import ConfigError
from cnnlab.runs.statedict import load_state


def spec_to_3d(spec: NetworkSpec, depth: int) -> NetworkSpec:
    if spec.spatial_dims != 2:
        raise ConfigError(f"spec {spec.name} is {spec.spatial_dims}D; inflation goes from 2D to 3D")
    return dataclasses.replace(
        spec, name=f"{spec.name}_3d", input_size=[spec.input_size[0], depth, *spec.input_size[1:]]
    )


def inflate_state_dict(state_2d: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, want in target.items():
        if key not in state_2d:
            raise ConfigError(f"cannot inflate: the 2D weights have no {key}; they are from another spec")
        have = state_2d[key]
        if have.shape == want.shape:
            out[key] = have.clone()
        elif (
            have.dim() == 4
            and want.dim() == 5
            and want.shape[:2] == have.shape[:2]
            and want.shape[3:] == have.shape[2:]
        ):
            t = want.shape[2]
            out[key] = have.unsqueeze(2).repeat(1, 1, t, 1, 1) / t
        else:
            raise ConfigError(
                f"cannot inflate {key}: 2D shape {tuple(have.shape)} does not extend to {tuple(want.shape)}"
            )
    return out


def inflate(model_2d: nn.Module, spec: NetworkSpec, depth: int) -> DesignedNet:
    """The 3D version of ``spec`` carrying ``model_2d``'s weights, inflated along depth."""
    model_3d = DesignedNet(spec_to_3d(spec, depth))
    load_state(model_3d, inflate_state_dict(model_2d.state_dict(), model_3d.state_dict()))
    return model_3d
