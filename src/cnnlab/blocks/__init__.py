"""Dimension-generic building blocks (spatial_dims 1, 2 or 3) that take layer types, not layers."""

from cnnlab.blocks.conv import ConvNormAct
from cnnlab.blocks.drop import DropPath, drop_path_rates
from cnnlab.blocks.factory import conv_layer, get_act_layer, get_norm_layer, get_pool_layer
from cnnlab.blocks.head import ClassifierHead
from cnnlab.blocks.residual import BasicBlock, Bottleneck, PadShortcut

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ClassifierHead",
    "ConvNormAct",
    "DropPath",
    "PadShortcut",
    "conv_layer",
    "drop_path_rates",
    "get_act_layer",
    "get_norm_layer",
    "get_pool_layer",
]
