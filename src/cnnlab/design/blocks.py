"""The block vocabulary of specs: each block type says which options it takes, how it changes the
shape (so a spec is checked before anything is built), and how to build it.

Shape rules describe the block's main path as convolution-like ops (kernel, stride, dilation,
padding, ceil_mode); from them come the output size and the receptive field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from cnnlab.blocks.attention import get_attn_layer
from cnnlab.blocks.conv import ConvNormAct, same_padding
from cnnlab.blocks.factory import get_act_layer, get_norm_layer
from cnnlab.blocks.mobile import DepthwiseSeparable, FusedMBConv, InvertedResidual
from cnnlab.blocks.multibranch import ASPP, DenseBlock, Inception, Pool, Transition
from cnnlab.blocks.residual import BasicBlock, Bottleneck
from cnnlab.errors import ConfigError


@dataclass(frozen=True)
class Op:
    """A convolution-like step of a block's main path, for shape and receptive-field arithmetic."""

    kernel: int
    stride: int = 1
    dilation: int = 1
    padding: int = 0
    ceil_mode: bool = False

    def out_size(self, n: int) -> int:
        span = n + 2 * self.padding - self.dilation * (self.kernel - 1) - 1
        if self.ceil_mode:
            out = -(-span // self.stride) + 1
            if (out - 1) * self.stride >= n + self.padding:  # PyTorch: the last window must start inside the input
                out -= 1
            return out
        return span // self.stride + 1


def conv_op(kernel: int, stride: int = 1, dilation: int = 1, padding: int | None = None) -> Op:
    return Op(kernel, stride, dilation, same_padding(kernel, dilation) if padding is None else padding)


@dataclass
class BlockContext:
    """What the network gives every block: its place, dimensionality and default layer types."""

    where: str
    spatial_dims: int
    norm: Callable[..., nn.Module]
    act: Callable[[], nn.Module]
    drop_path_rate: float = 0.0
    has_norm: bool = True  # False when the network's norm is "none" (VGG, AlexNet: convs carry biases)


@dataclass(frozen=True)
class BlockType:
    name: str
    options: dict[str, Any]  # accepted options and their defaults
    build: Callable[[int, int, int, dict[str, Any], BlockContext], nn.Module]
    ops: Callable[[int, dict[str, Any]], list[Op]]  # (stride, options) -> main path
    out_chs: Callable[[int, int | None, dict[str, Any], str], int]  # (in, out, options, where) -> out channels
    residual: bool = False  # takes a share of the network's drop_path_rate
    needs_out: bool = True
    doc: str = ""
    checks: tuple[Callable[[int, int, int, dict[str, Any], str], None], ...] = field(default_factory=tuple)


def _given_out(in_chs: int, out: int | None, options: dict[str, Any], where: str) -> int:
    if out is None:
        raise ConfigError(f"{where} lacks field 'out' (its output channels)")
    return out


def _same_channels(in_chs: int, out: int | None, options: dict[str, Any], where: str) -> int:
    if out is not None and out != in_chs:
        raise ConfigError(f"{where}: this block keeps the channels ({in_chs}); drop field 'out' or set it to {in_chs}")
    return in_chs


def _layer_types(
    options: dict[str, Any], ctx: BlockContext
) -> tuple[Callable[..., nn.Module], Callable[[], nn.Module]]:
    act = ctx.act if options.get("act") is None else get_act_layer(options["act"])
    norm = ctx.norm if options.get("norm") is None else get_norm_layer(options["norm"], ctx.spatial_dims)
    return norm, act


def _attn(options: dict[str, Any], ctx: BlockContext) -> Callable[[int], nn.Module] | None:
    return get_attn_layer(options.get("attn"), ctx.spatial_dims, **(options.get("attn_options") or {}))


def _check_groups(in_chs: int, out_chs: int, stride: int, options: dict[str, Any], where: str) -> None:
    groups = options.get("groups", 1)
    if in_chs % groups or out_chs % groups:
        raise ConfigError(f"{where}: groups={groups} must divide the input ({in_chs}) and output ({out_chs}) channels")


def _check_shortcut(in_chs: int, out_chs: int, stride: int, options: dict[str, Any], where: str) -> None:
    kind = options.get("shortcut", "B")
    if kind not in ("A", "B"):
        raise ConfigError(f"{where} field 'shortcut' is {kind!r}; choose A (zero-pad) or B (projection)")
    if kind == "A" and out_chs < in_chs:
        raise ConfigError(f"{where}: shortcut A cannot reduce channels ({in_chs} -> {out_chs}); use shortcut B")


def _bottleneck_mid(out_chs: int, options: dict[str, Any]) -> int:
    groups = options.get("groups", 1)
    if options.get("mid"):
        return options["mid"]
    # torchvision / ResNeXt convention: width = planes * (width_per_group / 64) * groups, planes = out / 4
    return int(out_chs // 4 * (options.get("width_per_group", 64) / 64.0)) * groups


def _check_bottleneck(in_chs: int, out_chs: int, stride: int, options: dict[str, Any], where: str) -> None:
    _check_shortcut(in_chs, out_chs, stride, options, where)
    mid, groups = _bottleneck_mid(out_chs, options), options.get("groups", 1)
    if mid < 1 or mid % groups:
        raise ConfigError(f"{where}: bottleneck width {mid} must be positive and divisible by groups={groups}")


def _build_conv(in_chs: int, out_chs: int, stride: int, o: dict[str, Any], ctx: BlockContext) -> nn.Module:
    norm, act = _layer_types(o, ctx)
    no_norm = o["norm"] == "none" or (o["norm"] is None and not ctx.has_norm)
    return ConvNormAct(
        in_chs,
        out_chs,
        o["kernel"],
        stride,
        spatial_dims=ctx.spatial_dims,
        dilation=o["dilation"],
        groups=o["groups"],
        padding=o["padding"],
        norm_layer=None if no_norm else norm,
        act_layer=None if o["act"] == "none" else act,
        bias=o["bias"],
    )


def _build_basic(in_chs: int, out_chs: int, stride: int, o: dict[str, Any], ctx: BlockContext) -> nn.Module:
    norm, act = _layer_types(o, ctx)
    return BasicBlock(
        in_chs,
        out_chs,
        stride,
        spatial_dims=ctx.spatial_dims,
        dilation=o["dilation"],
        shortcut=o["shortcut"],
        norm_layer=norm,
        act_layer=act,
        attn_layer=_attn(o, ctx),
        drop_path_rate=ctx.drop_path_rate,
    )


def _build_bottleneck(in_chs: int, out_chs: int, stride: int, o: dict[str, Any], ctx: BlockContext) -> nn.Module:
    norm, act = _layer_types(o, ctx)
    return Bottleneck(
        in_chs,
        out_chs,
        stride,
        mid_chs=_bottleneck_mid(out_chs, o),
        groups=o["groups"],
        spatial_dims=ctx.spatial_dims,
        dilation=o["dilation"],
        shortcut=o["shortcut"],
        norm_layer=norm,
        act_layer=act,
        attn_layer=_attn(o, ctx),
        drop_path_rate=ctx.drop_path_rate,
    )


def _build_mbconv(in_chs: int, out_chs: int, stride: int, o: dict[str, Any], ctx: BlockContext) -> nn.Module:
    norm, act = _layer_types(o, ctx)
    return InvertedResidual(
        in_chs,
        out_chs,
        stride,
        expand_ratio=o["expand"],
        kernel_size=o["kernel"],
        dilation=o["dilation"],
        se_ratio=o["se"],
        spatial_dims=ctx.spatial_dims,
        norm_layer=norm,
        act_layer=act,
        se_gate=get_act_layer(o["se_gate"]),
        drop_path_rate=ctx.drop_path_rate,
        skip=o["skip"],
    )


def _build_fused(in_chs: int, out_chs: int, stride: int, o: dict[str, Any], ctx: BlockContext) -> nn.Module:
    norm, act = _layer_types(o, ctx)
    return FusedMBConv(
        in_chs,
        out_chs,
        stride,
        expand_ratio=o["expand"],
        kernel_size=o["kernel"],
        se_ratio=o["se"],
        spatial_dims=ctx.spatial_dims,
        norm_layer=norm,
        act_layer=act,
        drop_path_rate=ctx.drop_path_rate,
        skip=o["skip"],
    )


def _build_separable(in_chs: int, out_chs: int, stride: int, o: dict[str, Any], ctx: BlockContext) -> nn.Module:
    norm, act = _layer_types(o, ctx)
    return DepthwiseSeparable(
        in_chs,
        out_chs,
        stride,
        kernel_size=o["kernel"],
        dilation=o["dilation"],
        spatial_dims=ctx.spatial_dims,
        norm_layer=norm,
        act_layer=act,
        attn_layer=_attn(o, ctx),
        pw_act=o["pw_act"],
        drop_path_rate=ctx.drop_path_rate,
        skip=o["skip"],
    )


def _build_attention(kind: str) -> Callable[[int, int, int, dict[str, Any], BlockContext], nn.Module]:
    def build(in_chs: int, out_chs: int, stride: int, o: dict[str, Any], ctx: BlockContext) -> nn.Module:
        layer = get_attn_layer(kind, ctx.spatial_dims, **{k: v for k, v in o.items() if v is not None})
        return layer(in_chs)

    return build


def _inception_out(in_chs: int, out: int | None, o: dict[str, Any], where: str) -> int:
    branches = o.get("branches")
    try:
        c1, (_, c3), (_, c5), cp = branches
        total = int(c1) + int(c3) + int(c5) + int(cp)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where} field 'branches' must be [c1, [r3, c3], [r5, c5], pool_proj], got {branches!r}"
        ) from None
    if out is not None and out != total:
        raise ConfigError(f"{where}: field 'out' is {out} but the branches add up to {total} channels")
    return total


def _dense_out(in_chs: int, out: int | None, o: dict[str, Any], where: str) -> int:
    total = in_chs + o["layers"] * o["growth"]
    if out is not None and out != total:
        raise ConfigError(
            f"{where}: field 'out' is {out} but {in_chs} + {o['layers']} layers x growth {o['growth']} = {total}"
        )
    return total


def _ops_conv(stride: int, o: dict[str, Any]) -> list[Op]:
    return [conv_op(o["kernel"], stride, o["dilation"], o["padding"])]


_RESIDUAL = {"shortcut": "B", "dilation": 1, "attn": None, "attn_options": None, "act": None, "norm": None}

BLOCKS: dict[str, BlockType] = {
    "conv": BlockType(
        "conv",
        {"kernel": 3, "dilation": 1, "groups": 1, "padding": None, "bias": None, "act": None, "norm": None},
        _build_conv,
        _ops_conv,
        _given_out,
        checks=(_check_groups,),
        doc="convolution -> norm -> activation (norm: none and act: none drop them)",
    ),
    "pool": BlockType(
        "pool",
        {"kind": "max", "kernel": 2, "padding": 0, "ceil_mode": False},
        lambda i, o_, s, o, ctx: Pool(
            i,
            kind=o["kind"],
            kernel_size=o["kernel"],
            stride=s if s != 1 else None,
            padding=o["padding"],
            ceil_mode=o["ceil_mode"],
            spatial_dims=ctx.spatial_dims,
        ),
        lambda s, o: [Op(o["kernel"], s if s != 1 else o["kernel"], 1, o["padding"], o["ceil_mode"])],
        _same_channels,
        needs_out=False,
        doc="max or avg pooling (stride defaults to the kernel)",
    ),
    "basic": BlockType(
        "basic",
        dict(_RESIDUAL),
        _build_basic,
        lambda s, o: [conv_op(3, s, o["dilation"]), conv_op(3, 1, o["dilation"])],
        _given_out,
        residual=True,
        checks=(_check_shortcut,),
        doc="two 3x3 convs with a shortcut (ResNet-18/34)",
    ),
    "bottleneck": BlockType(
        "bottleneck",
        {**_RESIDUAL, "groups": 1, "width_per_group": 64, "mid": None},
        _build_bottleneck,
        lambda s, o: [conv_op(1), conv_op(3, s, o["dilation"]), conv_op(1)],
        _given_out,
        residual=True,
        checks=(_check_bottleneck,),
        doc="1x1 reduce -> 3x3 -> 1x1 expand with a shortcut (ResNet-50, ResNeXt)",
    ),
    "mbconv": BlockType(
        "mbconv",
        {
            "expand": 6.0,
            "kernel": 3,
            "dilation": 1,
            "se": 0.0,
            "se_gate": "sigmoid",
            "skip": True,
            "act": None,
            "norm": None,
        },
        _build_mbconv,
        lambda s, o: [conv_op(1), conv_op(o["kernel"], s, o["dilation"]), conv_op(1)],
        _given_out,
        residual=True,
        doc="inverted residual: 1x1 expand -> depthwise kxk -> (SE) -> 1x1 project",
    ),
    "fused_mbconv": BlockType(
        "fused_mbconv",
        {"expand": 4.0, "kernel": 3, "se": 0.0, "skip": True, "act": None, "norm": None},
        _build_fused,
        lambda s, o: [conv_op(o["kernel"], s), conv_op(1)],
        _given_out,
        residual=True,
        doc="fused inverted residual: kxk expand -> (SE) -> 1x1 project (EfficientNetV2)",
    ),
    "separable": BlockType(
        "separable",
        {
            "kernel": 3,
            "dilation": 1,
            "attn": None,
            "attn_options": None,
            "pw_act": True,
            "skip": False,
            "act": None,
            "norm": None,
        },
        _build_separable,
        lambda s, o: [conv_op(o["kernel"], s, o["dilation"]), conv_op(1)],
        _given_out,
        residual=True,
        doc="depthwise kxk -> pointwise 1x1 (MobileNetV1, Xception)",
    ),
    "inception": BlockType(
        "inception",
        {"branches": None, "second_kernel": 5, "act": None, "norm": None},
        lambda i, o_, s, o, ctx: Inception(
            i,
            o["branches"],
            second_kernel=o["second_kernel"],
            spatial_dims=ctx.spatial_dims,
            norm_layer=_layer_types(o, ctx)[0],
            act_layer=_layer_types(o, ctx)[1],
        ),
        lambda s, o: [conv_op(1), conv_op(o["second_kernel"])],
        _inception_out,
        needs_out=False,
        doc="four parallel branches concatenated (GoogLeNet)",
    ),
    "dense": BlockType(
        "dense",
        {"layers": 6, "growth": 32, "bn_size": 4, "drop": 0.0, "act": None, "norm": None},
        lambda i, o_, s, o, ctx: DenseBlock(
            i,
            o["layers"],
            o["growth"],
            bn_size=o["bn_size"],
            spatial_dims=ctx.spatial_dims,
            norm_layer=_layer_types(o, ctx)[0],
            act_layer=_layer_types(o, ctx)[1],
            drop_rate=o["drop"],
        ),
        lambda s, o: [conv_op(1), conv_op(3)] * o["layers"],
        _dense_out,
        needs_out=False,
        doc="densely connected layers, each adding 'growth' channels (DenseNet)",
    ),
    "transition": BlockType(
        "transition",
        {"act": None, "norm": None},
        lambda i, o_, s, o, ctx: Transition(
            i, o_, spatial_dims=ctx.spatial_dims, norm_layer=_layer_types(o, ctx)[0], act_layer=_layer_types(o, ctx)[1]
        ),
        lambda s, o: [conv_op(1), Op(2, 2)],
        _given_out,
        doc="1x1 conv + 2x2 average pool between dense blocks",
    ),
    "aspp": BlockType(
        "aspp",
        {"rates": [6, 12, 18], "dropout": 0.1, "act": None, "norm": None},
        lambda i, o_, s, o, ctx: ASPP(
            i,
            o_,
            rates=o["rates"],
            spatial_dims=ctx.spatial_dims,
            norm_layer=_layer_types(o, ctx)[0],
            act_layer=_layer_types(o, ctx)[1],
            dropout=o["dropout"],
        ),
        lambda s, o: [conv_op(3, 1, max(o["rates"]))],
        _given_out,
        doc="atrous spatial pyramid pooling (DeepLabV3)",
    ),
    "se": BlockType(
        "se",
        {"rd_ratio": 1 / 16, "act": None, "gate": None},
        _build_attention("se"),
        lambda s, o: [],
        _same_channels,
        needs_out=False,
        doc="squeeze-and-excitation",
    ),
    "cbam": BlockType(
        "cbam",
        {"rd_ratio": 1 / 16, "spatial_kernel": 7},
        _build_attention("cbam"),
        lambda s, o: [Op(o["spatial_kernel"], 1, 1, o["spatial_kernel"] // 2)],
        _same_channels,
        needs_out=False,
        doc="channel + spatial attention",
    ),
    "eca": BlockType(
        "eca",
        {"kernel_size": None},
        _build_attention("eca"),
        lambda s, o: [],
        _same_channels,
        needs_out=False,
        doc="efficient channel attention",
    ),
}

STRIDE_FIXED = {"transition": 2}  # blocks whose stride is part of their definition


def block_type(name: str, where: str) -> BlockType:
    if name not in BLOCKS:
        from cnnlab.errors import suggest

        raise ConfigError(f"{where}: unknown block {name!r}{suggest(name, list(BLOCKS))} (known: {', '.join(BLOCKS)})")
    return BLOCKS[name]


def resolve_options(kind: BlockType, given: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(given) - set(kind.options))
    if unknown:
        raise ConfigError(
            f"{where}: block '{kind.name}' has no option(s) {', '.join(unknown)}; it takes "
            f"{', '.join(kind.options) or 'none'}"
        )
    return {**kind.options, **given}
