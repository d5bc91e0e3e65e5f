"""The per-layer table of a spec: output shape, parameters, MACs and receptive field."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from cnnlab.design.network import DesignedNet
from cnnlab.design.spec import NetworkSpec


@dataclass
class SummaryRow:
    path: str
    label: str
    block: str
    out_shape: list[int]
    params: int
    macs: int
    receptive_field: int


@dataclass
class Summary:
    name: str
    input_size: list[int]
    rows: list[SummaryRow]
    head_params: int
    head_macs: int
    total_params: int
    total_macs: int
    output_shape: list[int]
    head_block: str = ""  # a segmentation head's decoder: unet, deeplabv3plus, fpn

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(spec: NetworkSpec, input_size: list[int] | None = None) -> Summary:
    """Build ``spec`` (at ``input_size`` if given) and measure every block on one input.

    For a segmenter the blocks are its encoder's, and the head row is the decoder with the 1x1 classifier.
    """
    from torch.utils.flop_counter import FlopCounterMode

    if input_size:
        from dataclasses import replace

        spec = replace(spec, input_size=list(input_size))
    if spec.head.segments:
        from cnnlab.design.segmenter import build_segmenter

        model = build_segmenter(spec).eval()
        net, prefix, head_parts = model.encoder.body.model, "encoder.body.model.", ("decoder", "head")
    else:
        model = net = DesignedNet(spec).eval()
        prefix, head_parts = "", ("head",)
    x = torch.zeros(1, *spec.input_size)
    with torch.no_grad(), FlopCounterMode(display=False, depth=None) as counter:
        out = model(x)
    counts = {
        name.split(".", 1)[1] if "." in name else "": sum(ops.values()) // 2
        for name, ops in counter.get_flop_counts().items()
    }
    modules = dict(model.named_modules())
    rows = []
    for info in net.layers_info:
        module = modules[prefix + info.path]
        rows.append(
            SummaryRow(
                info.path,
                info.label,
                info.kind.name,
                list(info.out_shape),
                sum(p.numel() for p in module.parameters()),
                int(counts.get(prefix + info.path, 0)),
                info.receptive_field,
            )
        )
    head_params = sum(p.numel() for part in head_parts for p in getattr(model, part).parameters())
    return Summary(
        spec.name,
        list(spec.input_size),
        rows,
        head_params,
        sum(int(counts.get(part, 0)) for part in head_parts),
        sum(p.numel() for p in model.parameters()),
        int(counter.get_total_flops() // 2),
        list(out.shape[1:]),
        spec.head.type if spec.head.segments else "",
    )
