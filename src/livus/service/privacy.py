"""What a researcher may see: de-identified study records and images.

Patient name/ID, the free-text description and uploaded file names are replaced by stable
pseudonyms (keyed HMAC, the key stays in the data directory). Images lose everything outside
the scan fan (where scanners burn in names, dates and IDs), and text burned in inside the fan
is blacked out with the report package's detector (``livus.report.redact_pixels``).
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


def deidentify_study(study: dict[str, Any], key: bytes) -> dict[str, Any]:
    out = dict(study)
    out["patient_id"] = pseudonym(key, study.get("patient_id", ""), "patient")
    out["patient_name"] = ""
    out["description"] = ""
    out["study_instance_uid"] = pseudonym(key, study.get("study_instance_uid", ""), "study")
    out["deidentified"] = True
    return out


def deidentify_result(result: dict[str, Any], key: bytes) -> dict[str, Any]:
    out = dict(result)
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


def deidentify_image(image: np.ndarray, fan_polygon_px: list[list[float]] | None) -> np.ndarray:
    """Image for a researcher: outside the fan blanked, then burned-in text inside it blacked
    out with :func:`livus.report.redact_pixels.burned_in_text_mask` (grey or BGR images)."""
    img = mask_outside_fan(image, fan_polygon_px)
    try:
        from livus.report.redact_pixels import burned_in_text_mask
    except ImportError:  # the fan mask alone is already applied
        return img
    grey = img if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
    try:
        mask, _method = burned_in_text_mask(grey, None)
    except Exception:  # noqa: BLE001 - the fan mask alone is already applied
        return img
    img[np.asarray(mask) > 0] = 0
    return img
