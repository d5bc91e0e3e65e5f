"""Shape inference: walk a spec from its input size, block by block, without building anything.

Every block's output channels, spatial size and receptive field are known before a single weight
exists, and a spec that cannot work stops here with the stage, block, field and shapes in the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnlab.design.blocks import STRIDE_FIXED, BlockType, block_type, resolve_options
from cnnlab.design.spec import NetworkSpec, StageSpec
from cnnlab.errors import ConfigError


@dataclass
class LayerInfo:
    path: str  # module path in the built network: stem.0, stages.2.1
    label: str  # for people: "stage 2 (layer3) block 1"
    kind: BlockType
    options: dict[str, Any]
    in_chs: int
    out_chs: int
    stride: int
    in_size: tuple[int, ...]
    out_size: tuple[int, ...]
    receptive_field: int
    jump: int  # distance in input pixels between neighbouring outputs

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.out_chs, *self.out_size)


def _fmt(size: tuple[int, ...]) -> str:
    return "x".join(map(str, size))


def infer(spec: NetworkSpec) -> list[LayerInfo]:
    """The layer-by-layer shapes of ``spec``; raises ConfigError naming the block that cannot work."""
    if spec.spatial_dims not in (1, 2, 3):
        raise ConfigError(f"spec {spec.name}: input_size {spec.input_size} must have 1, 2 or 3 spatial sizes")
    chs, size = spec.in_chans, tuple(spec.input_size[1:])
    rf, jump = 1, 1
    layers: list[LayerInfo] = []
    sections = [("stem", i, s, f"stem layer {i}") for i, s in enumerate(spec.stem)]
    sections += [("stages", i, s, f"stage {i}" + (f" ({s.name})" if s.name else "")) for i, s in enumerate(spec.stages)]
    for section, index, stage, stage_label in sections:
        kind = block_type(stage.block, stage_label)
        options = resolve_options(kind, stage.options, f"{stage_label} ({stage.block})")
        repeats = 1 if section == "stem" else stage.repeats
        for r in range(repeats):
            label = f"{stage_label} block {r}" if repeats > 1 or section == "stages" else stage_label
            stride = STRIDE_FIXED.get(stage.block, stage.stride if r == 0 else 1)
            out_chs = _out_channels(kind, chs, stage, options, label)
            for check in kind.checks:
                check(chs, out_chs, stride, options, label)
            new_size = size
            for op in kind.ops(stride, options):
                new_size = tuple(op.out_size(n) for n in new_size)
                rf += (op.dilation * (op.kernel - 1)) * jump
                jump *= op.stride
                if min(new_size) < 1:
                    raise ConfigError(
                        f"{label} ({stage.block}): stride {op.stride} / kernel {op.kernel} takes the feature map "
                        f"from {_fmt(size)} below 1 pixel (input {_fmt(tuple(spec.input_size))}); remove a stride "
                        "or use a larger input_size"
                    )
            path = f"stem.{index}" if section == "stem" else f"stages.{index}.{r}"
            layers.append(LayerInfo(path, label, kind, options, chs, out_chs, stride, size, new_size, rf, jump))
            chs, size = out_chs, new_size
    _check_head(spec, layers[-1])
    return layers


def _out_channels(kind: BlockType, in_chs: int, stage: StageSpec, options: dict[str, Any], label: str) -> int:
    if kind.needs_out and stage.out is None:
        raise ConfigError(f"{label} ({stage.block}) lacks field 'out' (its output channels)")
    return kind.out_chs(in_chs, stage.out, options, f"{label} ({stage.block})")


def _check_head(spec: NetworkSpec, last: LayerInfo) -> None:
    head = spec.head
    if head.type == "mlp" and head.pool_size and spec.spatial_dims != 2:
        raise ConfigError("head of type mlp with pool_size is defined for 2D networks; use type classifier")
    if head.type == "embedding" and spec.spatial_dims != 2:
        raise ConfigError("head of type embedding (global depthwise conv) is defined for 2D networks")
