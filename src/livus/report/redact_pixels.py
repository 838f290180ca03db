"""Black out burned-in text (names, IDs, dates printed into the pixels) of an exported image.

Uses the preprocessing overlay detector (:func:`livus.preprocess.overlays.detect_overlays`) with
the detected fan (:func:`livus.preprocess.fan.detect_fan`): every burned-in mark OUTSIDE the fan
(anything brighter than the black background: scanners print patient name, ID, dates and the
hospital there) is found, grown horizontally so that a line of text becomes one solid bar, and
set to 0 in every channel. Marks inside the fan (calipers, measurement labels, livus' own overlay
labels) are left alone so that the echo data stays intact; text printed over the echo region
is therefore not removed.

Fallback (documented, reported as ``top-band``): when the fan cannot be found reliably (it
covers almost all or very little of the image), the top band of the image — where scanners
print patient name, ID and date — is blacked out across the full width instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from livus.preprocess.fan import detect_fan
from livus.preprocess.overlays import detect_overlays


@dataclass
class RedactParams:
    """Tuning of :func:`redact_burned_in_text` (fractions of the image, sizes in pixels)."""

    text_join_px: int = 15  # horizontal growth joining letters of one text line
    text_grow_px: int = 3  # vertical growth
    fan_area_min: float = 0.10  # fan fractions outside [min, max] are not trusted
    fan_area_max: float = 0.92
    top_band_fraction: float = 0.10  # fallback band height


@dataclass
class RedactResult:
    """The cleaned image, the blacked-out mask (uint8 0/1) and the method used."""

    image: np.ndarray
    mask: np.ndarray
    method: str  # "overlay-detector" or "top-band"


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image if image.dtype == np.uint8 else cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(image[..., :3]).astype(np.uint8), cv2.COLOR_RGB2GRAY)


def burned_in_text_mask(image: np.ndarray, params: RedactParams | None = None) -> tuple[np.ndarray, str]:
    """Mask (uint8 0/1, image pixels) of burned-in text to black out, and the method used."""
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


def redact_burned_in_text(image: np.ndarray, params: RedactParams | None = None) -> RedactResult:
    """Copy of ``image`` (grey (H, W) or colour (H, W, C)) with burned-in text set to 0."""
    mask, method = burned_in_text_mask(image, params)
    out = image.copy()
    out[mask > 0] = 0
    return RedactResult(image=out, mask=mask, method=method)
