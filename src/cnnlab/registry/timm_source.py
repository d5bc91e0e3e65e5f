"""Every timm architecture, registered when first needed (importing timm takes seconds)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.errors import CheckpointError, ConfigError
from cnnlab.registry.core import Registry
from cnnlab.registry.entry import IMAGENET_MEAN, IMAGENET_STD, ModelEntry
from cnnlab.registry.papers import family_of, paper_of
from cnnlab.weights.offline import offline_refs

if TYPE_CHECKING:
    from cnnlab.weights import WeightsInfo, WeightsSource


def register_all(registry: Registry) -> None:
    import timm
    from timm.models import get_pretrained_cfg
    from timm.models._registry import _model_to_module

    tags: dict[str, list[str]] = defaultdict(list)
    for tagged in timm.list_pretrained():
        arch, _, tag = tagged.partition(".")
        tags[arch].append(tag)

    for name in timm.list_models():
        cfg = get_pretrained_cfg(name)
        family = family_of(name, _model_to_module.get(name))
        paper, year = paper_of(family)
        hub = tuple(f"hub:timm/{name}.{tag}" for tag in tags.get(name, ()))
        registry.register(
            ModelEntry(
                name=name,
                source="timm",
                family=family,
                paper=paper,
                year=year,
                input_size=tuple(cfg.input_size) if cfg else (3, 224, 224),
                num_classes=(cfg.num_classes or 1000) if cfg else 1000,
                mean=tuple(cfg.mean) if cfg else IMAGENET_MEAN,
                std=tuple(cfg.std) if cfg else IMAGENET_STD,
                pretrained=offline_refs(name) + hub,
                first_conv=cfg.first_conv if cfg and isinstance(cfg.first_conv, str) else None,
                classifier=cfg.classifier if cfg and isinstance(cfg.classifier, str) else None,
                fixed_input_size=bool(cfg and cfg.fixed_input_size),
                builder=_Builder(name),
            )
        )


class _Builder:
    """Calls timm.create_model for one architecture (a class, so entries stay picklable)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, **kwargs: Any) -> Any:
        import timm

        return timm.create_model(self.name, **kwargs)


def create_timm_model(
    name: str,
    entry: ModelEntry,
    *,
    num_classes: int,
    in_chans: int,
    pretrained: bool | str | Path,
    features_only: bool,
    out_indices: tuple[int, ...] | None,
    **options: Any,
) -> Any:
    """A timm model; weights from a file or an offline package go through timm's own loader
    (``pretrained_cfg_overlay``), so stem adaptation, head reset and ``features_only`` behave as in timm."""
    import timm

    kwargs: dict[str, Any] = dict(num_classes=num_classes, in_chans=in_chans, **options)
    if features_only:
        kwargs["features_only"] = True
        if out_indices is not None:
            kwargs["out_indices"] = tuple(out_indices)
    try:
        if not pretrained:
            return timm.create_model(name, pretrained=False, **kwargs)
        from cnnlab.weights import WeightsInfo, resolve_source

        source = resolve_source(entry, pretrained)
        if source.kind == "hub":
            model = _from_hub(name, kwargs)
            info = WeightsInfo(
                source=f"hub:timm/{name}",
                mean=entry.mean,
                std=entry.std,
                labels="imagenet-1k" if num_classes == entry.num_classes else None,
            )
        else:
            model, info = _from_state_dict(name, entry, source, kwargs)
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None
    model.weights_info = info
    return model


def _from_hub(name: str, kwargs: dict[str, Any]) -> Any:
    import timm

    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except (OSError, RuntimeError) as exc:  # no network, hub unreachable, HTTP errors
        if "Error(s) in loading state_dict" in str(exc):
            raise
        raise CheckpointError(
            f"could not download pretrained weights for {name!r} from the Hugging Face hub "
            f"({str(exc).splitlines()[0][:160]}); without internet use --pretrained PATH or an offline set"
        ) from None


def _from_state_dict(
    name: str, entry: ModelEntry, source: WeightsSource, kwargs: dict[str, Any]
) -> tuple[Any, WeightsInfo]:
    import timm

    from cnnlab.weights import WeightsInfo, check_coverage, fetch_state_dict
    from cnnlab.weights.adapt import match_state_dict

    state = fetch_state_dict(entry, source)
    # Rename onto timm's keys against a template with the file's own head and stem, then let timm
    # adapt the stem to in_chans and drop the head when num_classes differs.
    head = state.get(f"{entry.classifier}.weight") if entry.classifier else None
    file_classes = int(head.shape[0]) if head is not None else entry.num_classes
    stem = state.get(f"{entry.first_conv}.weight") if entry.first_conv else None
    template_opts = {k: v for k, v in kwargs.items() if k not in ("features_only", "out_indices")}
    template_opts.update(num_classes=file_classes, in_chans=int(stem.shape[1]) if stem is not None else 3)
    template = timm.create_model(name, pretrained=False, **template_opts).state_dict()
    mapped, report = match_state_dict(
        state, template, mapping=source.mapping, first_conv=entry.first_conv, classifier=entry.classifier
    )
    check_coverage(report, source, name)
    overlay = dict(
        state_dict=mapped, num_classes=file_classes, mean=source.mean or entry.mean, std=source.std or entry.std
    )
    model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    if kwargs["num_classes"] != file_classes and entry.classifier:
        report.head_reset = [f"{entry.classifier}.weight", f"{entry.classifier}.bias"]
    if kwargs["in_chans"] != template_opts["in_chans"] and entry.first_conv:
        report.stem_adapted = [f"{entry.first_conv}.weight"]
    labels = source.labels if kwargs["num_classes"] == file_classes else None
    info = WeightsInfo(
        source=source.ref, mean=overlay["mean"], std=overlay["std"], labels=labels, report=report.to_dict()
    )
    return model, info
