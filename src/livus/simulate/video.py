"""Write frames as a video file (OpenCV; MJPG in AVI works with opencv-python-headless)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_video(path: str | Path, frames: list[np.ndarray], fps: float = 10.0, quality: int = 85) -> Path:
    """Write uint8 grey frames (all the same size) to ``path`` (.avi → MJPG, .mp4 → mp4v);
    ``quality`` is the MJPG JPEG quality (0–100)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not frames:
        raise ValueError("no frames")
    h, w = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
    vw = cv2.VideoWriter(str(path), fourcc, float(fps), (w, h), True)
    if not vw.isOpened():
        raise OSError(f"{path}: cannot open video writer")
    vw.set(cv2.VIDEOWRITER_PROP_QUALITY, float(quality))
    try:
        for f in frames:
            vw.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else f)
    finally:
        vw.release()
    return path
