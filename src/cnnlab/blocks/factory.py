"""Small factories that turn a name and a spatial_dims into a layer type.

Blocks receive *types* (``act_layer=nn.ReLU``) so one block serves many networks; specs and the
CLI speak in names (``act: silu``), resolved here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from cnnlab.errors import ConfigError

_ACTS: dict[str, Callable[..., nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "hardswish": nn.Hardswish,
    "hard_swish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid,
    "gelu": nn.GELU,
    "mish": nn.Mish,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "identity": nn.Identity,
    "none": nn.Identity,
}

_SPATIAL = (1, 2, 3)


def _check_dims(spatial_dims: int) -> None:
    if spatial_dims not in _SPATIAL:
        raise ConfigError(f"spatial_dims must be 1, 2 or 3, not {spatial_dims!r}")


def get_act_layer(name: str | type[nn.Module] | None) -> Callable[..., nn.Module]:
    """An activation type from its name (``relu``, ``silu``, ``hardswish``, ...)."""
    if name is None:
        return nn.Identity
    if not isinstance(name, str):
        return name
    key = name.lower()
    if key not in _ACTS:
        raise ConfigError(f"unknown activation {name!r}; choose one of {', '.join(sorted(_ACTS))}")
    return _ACTS[key]


def conv_layer(spatial_dims: int) -> type[nn.Module]:
    _check_dims(spatial_dims)
    return (nn.Conv1d, nn.Conv2d, nn.Conv3d)[spatial_dims - 1]


def get_norm_layer(name: str | None, spatial_dims: int = 2, **options: float) -> Callable[..., nn.Module]:
    """A normalisation type taking the channel count: ``batch``, ``group``, ``instance``, ``layer``, ``none``.

    ``options`` (eps, momentum) go to BatchNorm: TensorFlow-born weights (EfficientNet) use eps 1e-3.
    """
    _check_dims(spatial_dims)
    key = (name or "none").lower()
    if key in ("batch", "bn", "batchnorm"):
        cls = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[spatial_dims - 1]
        return partial(cls, **options) if options else cls
    if key in ("instance", "in"):
        cls = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)[spatial_dims - 1]
        return lambda c: cls(c, affine=True)
    if key in ("group", "gn"):
        return lambda c: nn.GroupNorm(_groups_for(c), c)
    if key in ("layer", "ln"):
        return lambda c: nn.GroupNorm(1, c)  # LayerNorm over (C, *spatial), channels-first
    if key in ("none", "identity"):
        return lambda c: nn.Identity()
    raise ConfigError(f"unknown norm {name!r}; choose one of batch, group, instance, layer, none")


def _groups_for(channels: int, preferred: int = 32) -> int:
    groups = min(preferred, channels)
    while channels % groups:
        groups -= 1
    return groups


def get_pool_layer(kind: str, spatial_dims: int = 2) -> type[nn.Module]:
    """A pooling type: ``max`` or ``avg`` (fixed window), ``adaptive_avg``, ``adaptive_max``."""
    _check_dims(spatial_dims)
    table = {
        "max": (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d),
        "avg": (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d),
        "adaptive_avg": (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d),
        "adaptive_max": (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d),
    }
    if kind not in table:
        raise ConfigError(f"unknown pooling {kind!r}; choose one of {', '.join(table)}")
    return table[kind][spatial_dims - 1]
