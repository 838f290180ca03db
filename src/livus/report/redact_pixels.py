"""Black out burned-in text (names, IDs, dates printed into the pixels) of an exported image.

Two detectors, their masks joined:

* the preprocessing overlay detector (:func:`livus.preprocess.overlays.detect_overlays`) with
  the detected fan (:func:`livus.preprocess.fan.detect_fan`): every mark OUTSIDE the fan
  (anything brighter than the black background) is found and grown horizontally so that a line
  of text becomes one solid bar. When the fan cannot be found reliably, the top band of the
  image (where scanners print name, ID and date) is taken instead (``top-band``);
* an OCR text detector run on the WHOLE image, fan included (:mod:`livus.report.ocr`): every
  text line it finds is blacked out, livus' own overlay labels included: their boxes are
  half-transparent, and scanner text under one (a name, say) stays faintly visible, so no
  label can be kept without keeping what it covers. The lesion outlines and axes stay; the
  numbers are in the de-identified ``case.json``.

The cleaned image is then read again: while the OCR can still read a line (recogniser score and
character count above :class:`RedactParams` limits) it is blacked out too, for at most
``max_rounds`` rounds. A result is ``clean`` only when OCR ran and nothing readable is left;
otherwise the caller must not call the image de-identified (it withholds the file).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from livus.preprocess.fan import detect_fan
from livus.preprocess.overlays import detect_overlays
from livus.report.ocr import OcrParams, OcrUnavailable, TextBox, TextReader


@dataclass
class RedactParams:
    """Tuning of :func:`redact_burned_in_text` (fractions of the image, sizes in pixels)."""

    text_join_px: int = 15  # horizontal growth joining letters of one text line
    text_grow_px: int = 3  # vertical growth
    fan_area_min: float = 0.10  # fan fractions outside [min, max] are not trusted
    fan_area_max: float = 0.92
    top_band_fraction: float = 0.10  # fallback band height
    ocr: bool = True  # run the OCR text detector over the whole image
    ocr_grow_px: int = 3  # OCR line boxes are grown by this before blacking out
    readable_score: float = 0.5  # recogniser score from which a line left over counts as readable
    readable_min_chars: int = 2  # letters / digits / CJK characters such a line must have
    line_height_max_px: int = 30  # a detected "line" thicker than this and than
    line_height_max_fraction: float = 0.05  # this × the short image side is speckle unless readable
    max_rounds: int = 3  # read-and-black-out rounds after the first before giving up
    ocr_params: OcrParams = field(default_factory=OcrParams)


@dataclass
class RedactResult:
    """The cleaned image, the blacked-out mask (uint8 0/1), the method and whether it is clean."""

    image: np.ndarray
    mask: np.ndarray
    method: str  # "ocr+overlay-detector", "ocr+top-band", or without "ocr+" when OCR did not run
    clean: bool  # OCR ran and no readable text is left
    n_text_lines: int = 0  # OCR text lines blacked out
    note: str = ""  # why not clean (never the text itself)


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image if image.dtype == np.uint8 else cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(image[..., :3]).astype(np.uint8), cv2.COLOR_RGB2GRAY)


def burned_in_text_mask(image: np.ndarray, params: RedactParams | None = None) -> tuple[np.ndarray, str]:
    """Mask (uint8 0/1, image pixels) of burned-in marks outside the fan (no OCR), and the
    method used (``overlay-detector`` or ``top-band``)."""
    params = params or RedactParams()
    grey = _grey(image)
    h, w = grey.shape
    try:
        fan = detect_fan(grey)
        fan_ok = params.fan_area_min <= fan.area_fraction <= params.fan_area_max
    except (ValueError, cv2.error):
        fan, fan_ok = None, False
    if not fan_ok or fan is None:
        mask = np.zeros((h, w), np.uint8)
        mask[: max(1, int(round(h * params.top_band_fraction)))] = 1
        return mask, "top-band"
    outside = (fan.mask == 0).astype(np.uint8)
    mask = detect_overlays(grey, fan.mask) & outside
    if mask.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * params.text_join_px + 1, 2 * params.text_grow_px + 1))
        mask = cv2.dilate(mask, kernel) & outside
    return mask, "overlay-detector"


def _n_chars(line: str) -> int:
    return sum(ch.isalnum() for ch in line)  # str.isalnum() is true for CJK characters too


def _readable(box: TextBox, params: RedactParams) -> bool:
    return box.score >= params.readable_score and _n_chars(box.text) >= params.readable_min_chars


def _line_height_px(poly: np.ndarray) -> float:
    sides = np.linalg.norm(poly - np.roll(poly, 1, axis=0), axis=1)
    return float(min(sides[0] + sides[2], sides[1] + sides[3]) / 2)


def _text_like(line: TextBox, params: RedactParams, short_side_px: int) -> bool:
    """A detected line to black out: readable, or thin enough to be a line of text."""
    limit = max(params.line_height_max_px, params.line_height_max_fraction * short_side_px)
    return _readable(line, params) or _line_height_px(line.polygon_px) <= limit


def _grown_polygon(poly: np.ndarray, grow_px: float) -> np.ndarray:
    """The quadrilateral grown outwards by ``grow_px`` (corners move along their diagonals)."""
    direction = poly - poly.mean(axis=0)
    norm = np.linalg.norm(direction, axis=1, keepdims=True)
    return np.round(poly + direction / np.maximum(norm, 1e-6) * grow_px * np.sqrt(2.0)).astype(np.int32)


def _fill_lines(mask: np.ndarray, lines: list[TextBox], grow_px: int) -> int:
    """Black out ``lines`` in ``mask`` (in place); returns how many."""
    for line in lines:
        cv2.fillPoly(mask, [_grown_polygon(line.polygon_px, grow_px)], 1)
    return len(lines)


def _blackout(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = image.copy()
    out[mask > 0] = 0
    return out


def text_mask_for(samples: list[np.ndarray], params: RedactParams | None = None,
                  reader: TextReader | None = None) -> tuple[np.ndarray, str, bool, int, str]:
    """Mask of burned-in text shared by ``samples`` (display images of one size: grey uint8 or
    colour; e.g. frames of one clip). Returns ``(mask, method, clean, n_text_lines, note)``:
    ``clean`` when OCR ran and can read nothing in any masked sample."""
    params = params or RedactParams()
    h, w = samples[0].shape[:2]
    mask = np.zeros((h, w), np.uint8)
    methods = set()
    for sample in samples:
        m, method = burned_in_text_mask(sample, params)
        mask |= m
        methods.add(method)
    base = "top-band" if "top-band" in methods else "overlay-detector"
    if not params.ocr:
        return mask, base, False, 0, "OCR text detection was switched off"
    if reader is None:
        try:
            reader = TextReader(params.ocr_params)
        except OcrUnavailable as exc:
            return mask, base, False, 0, str(exc)
    try:
        return _ocr_rounds(samples, mask, base, params, reader)
    except OcrUnavailable as exc:
        return mask, base, False, 0, str(exc)


def _ocr_rounds(samples: list[np.ndarray], mask: np.ndarray, base: str, params: RedactParams,
                reader: TextReader) -> tuple[np.ndarray, str, bool, int, str]:
    """Black out every detected text line, then re-read until nothing is readable (in place)."""
    h, w = mask.shape
    n_lines = 0
    for sample in samples:  # first round: every detected text line, readable or not
        lines = [line for line in reader.read(_blackout(sample, mask)) if _text_like(line, params, min(h, w))]
        n_lines += _fill_lines(mask, lines, params.ocr_grow_px)
    for _ in range(params.max_rounds):  # then whatever can still be read
        left = [line for sample in samples for line in reader.read(_blackout(sample, mask))
                if _readable(line, params)]
        if not left:
            return mask, f"ocr+{base}", True, n_lines, ""
        n_lines += _fill_lines(mask, left, params.ocr_grow_px + 2)
    return mask, f"ocr+{base}", False, n_lines, f"text still readable after {params.max_rounds} rounds"


def redact_burned_in_text(image: np.ndarray, params: RedactParams | None = None,
                          reader: TextReader | None = None) -> RedactResult:
    """Copy of ``image`` (grey (H, W) or colour (H, W, C)) with burned-in text set to 0."""
    display = image if image.dtype == np.uint8 else _grey(image)
    mask, method, clean, n_lines, note = text_mask_for([display], params, reader)
    return RedactResult(image=_blackout(image, mask), mask=mask, method=method, clean=clean,
                        n_text_lines=n_lines, note=note)
