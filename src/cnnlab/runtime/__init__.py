"""Runtimes: one Predictor interface, shared pre- and post-processing from the model card."""

from cnnlab.runtime.predictor import Predictor, TorchPredictor, load_predictor
from cnnlab.runtime.preprocess import Preprocessor, expand_inputs

__all__ = ["Predictor", "Preprocessor", "TorchPredictor", "expand_inputs", "load_predictor", "predict"]


def predict(
    target: str, inputs: list[str], *, top_k: int = 5, runtime: str = "auto", draw: str | None = None
) -> list[dict]:
    """Predictions of the model in ``target`` (run, artifact or registry model) for image files, folders
    and (detectors) video files. ``draw``: a folder for copies with the detections drawn (and annotated
    videos); each result then names its ``drawn`` file. Segmenters write there a mask per input (PNG,
    or NIfTI / .npz for volumes) and an overlay per image, named by ``mask`` and ``overlay``."""
    from pathlib import Path

    from cnnlab.runtime.video import is_video, predict_video

    predictor = load_predictor(target, runtime)
    videos = [item for item in inputs if is_video(item)]
    images = [item for item in inputs if not is_video(item)]
    results = predictor.predict(images, top_k=top_k) if images else []
    if predictor.card.task == "segment":
        from cnnlab.runtime.mask_files import save_masks, strip_masks

        if draw is not None:
            save_masks(results, draw, predictor.card.num_classes)
        else:
            strip_masks(results)
        return results
    if draw is not None and images:
        from cnnlab.runtime.draw import save_drawn

        save_drawn(results, draw)
    for video in videos:
        out = Path(draw) / f"{Path(video).stem}.boxes.mp4" if draw is not None else None
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
        results.append(predict_video(predictor, video, out))
    return results
