"""What a researcher may see: de-identified study records and images.

Patient name/ID, the free-text description and uploaded file names are replaced by stable
pseudonyms (keyed HMAC, the key stays in the data directory). Images lose everything outside
the scan fan (where scanners burn in names, dates and IDs), and text burned in inside the fan
is blacked out with the report package's OCR and detector (``livus.report.redact_pixels``);
an image the OCR cannot verify clean is served all black.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import cv2
import numpy as np


def pseudonym(key: bytes, value: str, prefix: str = "anon") -> str:
    """Stable, non-reversible stand-in for ``value`` (empty stays empty)."""
    if not value:
        return ""
    return f"{prefix}-{hmac.new(key, value.encode('utf-8', 'replace'), hashlib.sha256).hexdigest()[:12]}"


WITHHELD_ERROR = "analysis failed for one or more files (details withheld in the de-identified view)"


def deidentify_study(study: dict[str, Any], key: bytes) -> dict[str, Any]:
    """A study summary for a researcher: identifiers pseudonymised, free text and error
    messages (which may quote a file name such as ``Wang_Wei_MRN12345.png``) withheld."""
    out = dict(study)
    out["patient_id"] = pseudonym(key, study.get("patient_id", ""), "patient")
    out["patient_name"] = ""
    out["description"] = ""
    out["study_instance_uid"] = pseudonym(key, study.get("study_instance_uid", ""), "study")
    out["error"] = WITHHELD_ERROR if study.get("error") else ""
    out["deidentified"] = True
    return out


def _replace_in_values(obj: Any, pairs: list[tuple[str, str]]) -> Any:
    """``obj`` (JSON data) with each ``old`` replaced by ``new`` inside string VALUES (keys kept)."""
    if isinstance(obj, str):
        for old, new in pairs:
            obj = obj.replace(old, new)
        return obj
    if isinstance(obj, list):
        return [_replace_in_values(v, pairs) for v in obj]
    if isinstance(obj, dict):
        return {k: _replace_in_values(v, pairs) for k, v in obj.items()}
    return obj


def deidentify_result(result: dict[str, Any], key: bytes, names: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """A frame result for a researcher: its source file name, and every other mention of the
    study's file ``names`` or their stems (of 3 characters or more) in its texts (warnings quote
    them), replaced by pseudonyms."""
    pairs = []
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        stem = name.rsplit(".", 1)[0]
        pairs += [(value, pseudonym(key, name, "file")) for value in ((name, stem) if len(stem) >= 3 else (name,))]
    out = _replace_in_values(result, pairs)
    out["source"] = pseudonym(key, str(result.get("source", "")), "file")
    return out


def mask_outside_fan(image: np.ndarray, fan_polygon_px: list[list[float]] | None) -> np.ndarray:
    """Black out every pixel outside the fan polygon (original pixels); no fan → all black
    except nothing is assumed safe, so the whole image is blanked."""
    out = np.zeros_like(image)
    if not fan_polygon_px or len(fan_polygon_px) < 3:
        return out
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(fan_polygon_px, np.float64)).astype(np.int32)], 1)
    out[mask > 0] = image[mask > 0]
    return out


def keep_mask(image: np.ndarray, fan_polygon_px: list[list[float]] | None) -> np.ndarray:
    """Pixels (uint8 0/1, image size) a researcher may see: inside the fan, minus burned-in text
    found by :func:`livus.report.redact_pixels.redact_burned_in_text` (OCR over the fan included,
    grey or BGR image). When the OCR cannot run or still reads text, nothing is shown (all 0):
    an image is never served as de-identified unless it was verified clean."""
    keep = mask_outside_fan(np.ones(image.shape[:2], np.uint8), fan_polygon_px)
    try:
        from livus.report.ocr import TextReader
        from livus.report.redact_pixels import redact_burned_in_text

        grey = image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY)
        red = redact_burned_in_text(grey * keep, reader=TextReader())
    except Exception:  # noqa: BLE001 - no verified cleaning: show nothing
        return np.zeros_like(keep)
    if not red.clean:
        return np.zeros_like(keep)
    keep[np.asarray(red.mask) > 0] = 0
    return keep


def deidentify_image(image: np.ndarray, fan_polygon_px: list[list[float]] | None) -> np.ndarray:
    """Image for a researcher: only the pixels of :func:`keep_mask`, the rest black."""
    keep = keep_mask(image, fan_polygon_px)
    return image * (keep[..., None] if image.ndim == 3 else keep)


def deidentify_panels(overlay: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """An overlay of one or more side-by-side panels, each the size of the original image
    (``keep``: :func:`keep_mask` of that image), with every panel masked the same way; the
    panels sit at the left and right edges with a gap between them (``draw_overlay``'s
    overlay | Grad-CAM). A layout that does not fit is blanked entirely (nothing is guessed)."""
    h, w = keep.shape
    if overlay.shape[0] != h or overlay.shape[1] < w:
        return np.zeros_like(overlay)
    out = np.zeros_like(overlay)
    starts = [0] if overlay.shape[1] < 2 * w else [0, overlay.shape[1] - w]
    for x0 in starts:
        panel = overlay[:, x0:x0 + w]
        out[:, x0:x0 + w] = panel * (keep[..., None] if panel.ndim == 3 else keep)
    return out
