"""Conversion of decoded pixel arrays (any source) to the 8-bit grey image livus works on.

This is the one place where colour becomes grey, so every reader and importer treats colour the
same way:

* Grey content stored as RGB (the usual JPEG export of a B-mode image) becomes its luminance
  (ITU-R BT.601 weights), which equals the channel value where the channels agree.
* Pixels with real colour (the channels differ by more than ``COLOR_SPREAD_LEVELS``: a
  colour-Doppler box, coloured markers or text) are flagged in a boolean ``color_mask`` and take
  the **minimum channel** instead of the luminance. Chosen because it is local, cheap and
  deterministic: saturated flow colour (red/blue) becomes dark, like the anechoic vessel lumen it
  covers in B-mode, and weakly tinted pixels keep their grey level; a luminance would paint the
  flow map into the tissue texture. Later steps (overlay removal) can inpaint masked pixels.
* More than 8 bits are scaled linearly to 0..255 against a full-scale value (for DICOM the
  stored bit depth, otherwise the image maximum, because a PNG/TIFF does not say how many of
  its 16 bits are used).
"""

from __future__ import annotations

import cv2
import numpy as np

# Channel spread (max - min, 8-bit levels) above which a pixel counts as coloured. JPEG chroma
# noise on grey content stays well below 20 levels.
COLOR_SPREAD_LEVELS = 40
# Fewer coloured pixels than this are treated as noise (no colour flag for the frame).
MIN_COLOR_PIXELS = 16


def to_uint8(array: np.ndarray, full_scale: float | None = None) -> np.ndarray:
    """Scale an integer or float array linearly to ``uint8``.

    ``uint8`` input is returned unchanged. ``full_scale`` is the value that maps to 255 (e.g.
    ``2**bits_stored - 1``); by default the array's maximum. Negative values clip to 0.
    """
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    a = array.astype(np.float32)
    top = float(full_scale) if full_scale else float(a.max(initial=0.0))
    if top <= 0:
        return np.zeros(array.shape, np.uint8)
    return np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8)


def grey_and_color_mask(rgb: np.ndarray, channel_order: str = "rgb") -> tuple[np.ndarray, np.ndarray | None]:
    """Grey ``uint8`` image and colour mask of an ``(rows, cols, 3)`` uint8 RGB array (BGR with
    ``channel_order="bgr"``: OpenCV's order, converted without reordering the channels).

    Returns ``(grey, mask)`` where ``mask`` is a boolean array of coloured pixels, or ``None``
    when fewer than ``MIN_COLOR_PIXELS`` pixels carry colour.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB array (rows, cols, 3), got {rgb.shape}")
    if channel_order not in ("rgb", "bgr"):
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', not {channel_order!r}")
    rgb = np.ascontiguousarray(to_uint8(rgb))
    # OpenCV per-channel ops: ~50x faster than numpy reductions over the channel axis; min and
    # max do not depend on the channel order
    c0, c1, c2 = cv2.split(rgb)
    lo = cv2.min(cv2.min(c0, c1), c2)
    spread = cv2.subtract(cv2.max(cv2.max(c0, c1), c2), lo)
    colored = spread > COLOR_SPREAD_LEVELS
    # BT.601 luminance, rounded
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY if channel_order == "rgb" else cv2.COLOR_BGR2GRAY)
    if int(np.count_nonzero(colored)) < MIN_COLOR_PIXELS:
        return grey, None
    grey[colored] = lo[colored]
    return grey, colored


def to_grey(array: np.ndarray, channel_order: str = "rgb", full_scale: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Grey ``uint8`` image and colour mask (or ``None``) of a decoded image of any layout.

    Accepts ``(rows, cols)`` grey, ``(rows, cols, 1)``, ``(rows, cols, 3)`` and ``(rows, cols, 4)``
    (alpha dropped) arrays of any integer/float type; ``channel_order`` is ``"rgb"`` or ``"bgr"``
    (OpenCV). ``full_scale`` as in :func:`to_uint8`.
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        return to_uint8(a, full_scale), None
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"unsupported pixel array shape {a.shape}")
    return grey_and_color_mask(to_uint8(np.ascontiguousarray(a[..., :3]), full_scale), channel_order)
