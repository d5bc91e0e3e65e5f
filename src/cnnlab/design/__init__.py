"""Design your own networks from one block vocabulary, in 1D, 2D and 3D.

spec = load_spec("my_net.yaml")      # typed, validated
layers = infer(spec)                 # shapes and receptive fields, before anything is built
model = build(spec)                  # a registered, contract-following nn.Module
summarize(spec)                      # per-layer output shape, params, MACs, receptive field
scale_spec(spec, phi=1)              # compound scaling
inflate(model_2d, spec, depth=16)    # the 3D network, with 2D weights inflated
"""

from cnnlab.design.blocks import BLOCKS
from cnnlab.design.build import build, build_from_dict, create_from_spec, register_spec
from cnnlab.design.infer import LayerInfo, infer
from cnnlab.design.inflate import inflate, inflate_state_dict, spec_to_3d
from cnnlab.design.network import DesignedNet
from cnnlab.design.scale import scale_spec
from cnnlab.design.spec import HeadSpec, NetworkSpec, StageSpec, load_spec
from cnnlab.design.summary import Summary, summarize

__all__ = [
    "BLOCKS",
    "DesignedNet",
    "HeadSpec",
    "LayerInfo",
    "NetworkSpec",
    "StageSpec",
    "Summary",
    "build",
    "build_from_dict",
    "create_from_spec",
    "infer",
    "inflate",
    "inflate_state_dict",
    "load_spec",
    "register_spec",
    "scale_spec",
    "spec_to_3d",
    "summarize",
]
