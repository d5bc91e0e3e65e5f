"""Training: a small core step and hooks around it, recipes for transfer learning."""

from cnnlab.train.api import TrainResult, train_model
from cnnlab.train.config import TrainConfig, parse_duration

__all__ = ["TrainConfig", "TrainResult", "parse_duration", "train_model"]
