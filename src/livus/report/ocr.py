"""Read burned-in text anywhere in an image with an OCR engine from a registry package.

The engine is RapidOCR (``rapidocr`` on PyPI, Apache-2.0): PaddleOCR's PP-OCR text detector
(a DB segmentation net that finds text lines in clutter, speckle included) and recogniser
(Latin and Chinese characters) as ONNX models shipped inside the wheel, run with ONNX Runtime,
so nothing is downloaded at run time. One :class:`TextReader` holds the loaded models: make it
once per export and pass it along.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np


class OcrUnavailable(RuntimeError):
    """The OCR engine cannot be loaded (package or model missing) or failed on an image."""


@dataclass
class OcrParams:
    """Tuning of :class:`TextReader` (sizes in image pixels)."""

    min_side_px: int = 736  # images with a shorter side are scaled up for detection: small
    # scanner fonts (8-12 px) over speckle are missed at their own size
    threads: int = 1  # ONNX Runtime threads per model (the machines share their cores)
    box_thresh: float = 0.5  # detector: mean text probability a line box needs


@dataclass(frozen=True)
class TextBox:
    """One text line: its quadrilateral (4 × (x, y), image pixels), text and recogniser score."""

    polygon_px: np.ndarray
    text: str
    score: float


def _engine_params(params: OcrParams) -> dict:
    return {
        "Global.log_level": "error",
        "Global.use_cls": False,  # burned-in text is upright
        "Global.text_score": 0.0,  # keep every detected line, however badly it reads
        "EngineConfig.onnxruntime.intra_op_num_threads": params.threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        "Det.limit_type": "min",
        "Det.limit_side_len": params.min_side_px,
        "Det.box_thresh": params.box_thresh,
    }


class TextReader:
    """Text lines of an image (grey or colour, any integer dtype) with their positions."""

    def __init__(self, params: OcrParams | None = None) -> None:
        self.params = params or OcrParams()
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:  # pragma: no cover - a runtime dependency
            raise OcrUnavailable(f"rapidocr is not installed ({exc})") from exc
        try:
            self._engine = RapidOCR(params=_engine_params(self.params))
        except Exception as exc:  # noqa: BLE001 - any failure to load the models means no OCR
            raise OcrUnavailable(f"OCR models cannot be loaded ({type(exc).__name__}: {exc})") from exc
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)

    @staticmethod
    def _bgr(image: np.ndarray) -> np.ndarray:
        img = image
        if img.dtype != np.uint8:
            img = cv2.normalize(img.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        if img.ndim == 2:
            return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        return np.ascontiguousarray(img[..., :3])

    def read(self, image: np.ndarray) -> list[TextBox]:
        """Every text line found (detector boxes with the recogniser's text and score)."""
        try:
            out = self._engine(self._bgr(image), use_det=True, use_cls=False, use_rec=True)
        except Exception as exc:  # noqa: BLE001 - the caller must treat the image as not verified
            raise OcrUnavailable(f"OCR failed on a {image.shape} image ({type(exc).__name__})") from exc
        boxes = getattr(out, "boxes", None)
        if boxes is None or len(boxes) == 0:
            return []
        texts = getattr(out, "txts", None) or ("",) * len(boxes)
        scores = getattr(out, "scores", None) or (0.0,) * len(boxes)
        return [TextBox(np.asarray(b, np.float32).reshape(4, 2), str(t), float(s))
                for b, t, s in zip(boxes, texts, scores)]
