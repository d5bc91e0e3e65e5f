"""Compound scaling (Tan & Le 2019): depth, width and resolution grown together.

EfficientNet's coefficients for one step of ``phi``: depth x1.2, width x1.1, resolution x1.15
(alpha * beta^2 * gamma^2 ~ 2, so each step about doubles the FLOPs). Channels are rounded to
multiples of ``divisor`` (8: what SIMD units and tensor cores like), never more than 10% down.
"""

from __future__ import annotations

import dataclasses
import math

from cnnlab.blocks.mobile import make_divisible
from cnnlab.design.spec import NetworkSpec, StageSpec
from cnnlab.errors import ConfigError

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15


def scale_spec(
    spec: NetworkSpec,
    *,
    width: float = 1.0,
    depth: float = 1.0,
    resolution: float = 1.0,
    phi: float | None = None,
    divisor: int = 8,
    name: str | None = None,
) -> NetworkSpec:
    if phi is not None:
        depth, width, resolution = ALPHA**phi, BETA**phi, GAMMA**phi
    for label, value in (("width", width), ("depth", depth), ("resolution", resolution)):
        if value <= 0:
            raise ConfigError(f"--{label} must be positive, got {value}")

    def channels(value: int | None) -> int | None:
        return None if value is None else make_divisible(value * width, divisor)

    def scale_stage(stage: StageSpec, repeat: bool) -> StageSpec:
        options = dict(stage.options)
        if "branches" in options:  # inception: every branch width scales
            c1, (r3, c3), (r5, c5), cp = options["branches"]
            options["branches"] = [
                channels(c1),
                [channels(r3), channels(c3)],
                [channels(r5), channels(c5)],
                channels(cp),
            ]
        if "growth" in options:
            options["growth"] = channels(options["growth"])
        repeats = max(1, math.ceil(stage.repeats * depth)) if repeat else stage.repeats
        out = None if stage.out is None or stage.block in ("inception", "dense") else channels(stage.out)
        return dataclasses.replace(stage, out=out, repeats=repeats, options=options)

    spatial = [
        max(divisor, int(round(s * resolution / divisor)) * divisor) if resolution != 1.0 else s
        for s in spec.input_size[1:]
    ]
    suffix = f"_w{width:g}_d{depth:g}_r{resolution:g}".replace(".", "p") if phi is None else f"_phi{phi:g}"
    return dataclasses.replace(
        spec,
        name=name or spec.name + suffix,
        input_size=[spec.input_size[0], *spatial],
        stem=[scale_stage(s, repeat=False) for s in spec.stem],
        stages=[scale_stage(s, repeat=True) for s in spec.stages],
    )
