"""Detection on video files, frame by frame, through any Predictor: the boxes drawn into a new video,
the detections per frame as JSON, and the frames per second measured end to end (decode,
pre-process, inference, post-process, drawing and encoding)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError, DataError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise CnnlabError("reading video needs OpenCV: pip install 'cnnlab[video]'") from exc
    return cv2


def predict_video(
    predictor: Any,
    path: str | Path,
    out: str | Path | None = None,
    *,
    batch_size: int = 8,
    max_frames: int | None = None,
) -> dict[str, Any]:
    """Run ``predictor`` on every frame of ``path``; write the annotated video to ``out`` (.mp4) if given.

    Returns ``{"input", "frames", "fps", "seconds", "output", "detections": [per frame]}``.
    """
    from cnnlab.runtime.draw import draw_detections

    cv2 = _cv2()
    capture = cv2.VideoCapture(str(path))
    if not Path(path).is_file() or not capture.isOpened():
        raise DataError(f"{path}: not a readable video file (OpenCV could not open it)")
    rate = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    per_frame: list[list[dict[str, Any]]] = []
    started = time.perf_counter()

    def flush(frames: list[np.ndarray]) -> None:
        nonlocal writer
        results = predictor.predict(frames, batch_size=batch_size)
        for frame, result in zip(frames, results, strict=True):
            per_frame.append(result.get("detections", []))
            if out is None:
                continue
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), rate, (width, height))
            drawn = np.asarray(draw_detections(frame, result.get("detections", [])))
            writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))

    pending: list[np.ndarray] = []
    try:
        while max_frames is None or len(per_frame) + len(pending) < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            pending.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if len(pending) == batch_size:
                flush(pending)
                pending = []
        if pending:
            flush(pending)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if not per_frame:
        raise DataError(f"{path}: no frame could be decoded")
    seconds = time.perf_counter() - started
    return {
        "input": str(path),
        "frames": len(per_frame),
        "seconds": round(seconds, 3),
        "fps": round(len(per_frame) / seconds, 2),
        "output": str(out) if out is not None else None,
        "detections": per_frame,
    }
