"""Run directories and model cards: every command reads and writes these."""

from cnnlab.runs.card import ModelCard
from cnnlab.runs.checkpoint import (
    CARD_FILE,
    WEIGHTS_FILE,
    LoadedRun,
    build_from_card,
    load_run,
    load_weights_into,
    read_card,
    save_model,
    save_weights,
)
from cnnlab.runs.rundir import RunDir, next_run_path

__all__ = [
    "CARD_FILE",
    "WEIGHTS_FILE",
    "LoadedRun",
    "ModelCard",
    "RunDir",
    "build_from_card",
    "load_run",
    "load_weights_into",
    "next_run_path",
    "read_card",
    "save_model",
    "save_weights",
]
