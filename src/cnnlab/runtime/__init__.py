"""Runtimes: one Predictor interface, shared pre- and post-processing from the model card."""

from cnnlab.runtime.predictor import Predictor, TorchPredictor, load_predictor
from cnnlab.runtime.preprocess import Preprocessor, expand_inputs

__all__ = ["Predictor", "Preprocessor", "TorchPredictor", "expand_inputs", "load_predictor", "predict"]


def predict(target: str, inputs: list[str], *, top_k: int = 5, runtime: str = "auto") -> list[dict]:
    """Predictions of the model in ``target`` (run, artifact or registry model) for image files and folders."""
    return load_predictor(target, runtime).predict(inputs, top_k=top_k)
