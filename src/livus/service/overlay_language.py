"""A frame's overlay in the viewer's language.

The analysis draws each overlay once, in the uploader's language (``overlay | Grad-CAM`` panels,
:func:`livus.report.overlay.draw_overlay`). A reader of the other language gets it re-drawn:

* the left panel (outlines, axes, lesion labels, the "no pixel spacing" banner) is drawn again
  from the original frame and the stored result, by the same ``draw_overlay``;
* the Grad-CAM panel is kept (its heat map is not stored and would need the model again); only
  its title is replaced: the area of the title in either language is blanked and the title
  painted in the viewer's language, both through :func:`livus.report.overlay.heatmap_panel`.

The service caches the result beside the study (one file per frame and language).
"""

from __future__ import annotations

import numpy as np

from livus.report.i18n import LANGUAGES
from livus.report.overlay import OverlayStyle, draw_overlay, heatmap_panel
from livus.types import FrameResult


def _title_only(shape: tuple[int, ...], result: FrameResult, style: OverlayStyle, language: str) -> np.ndarray:
    """The heat-map panel's title alone, on black (its pixels show where the title lies)."""
    empty = FrameResult(result.source, result.frame_index, result.image_size_px)  # no outlines
    black = np.zeros(shape, np.uint8)
    return heatmap_panel(black, np.zeros(shape[:2], np.float32), empty, style, language)


def retitle_heatmap_panel(panel_rgb: np.ndarray, result: FrameResult, language: str,
                          style: OverlayStyle | None = None) -> np.ndarray:
    """A stored Grad-CAM panel (RGB, the original image's size) with its title in ``language``."""
    style = style or OverlayStyle()
    out = panel_rgb.copy()
    titles = np.zeros(panel_rgb.shape[:2], bool)
    for lang in LANGUAGES:
        titles |= _title_only(panel_rgb.shape, result, style, lang).any(axis=2)
    ys, xs = np.nonzero(titles)
    if len(xs):
        margin = max(2, (int(ys.max()) - int(ys.min())) // 3)  # the title box's padding around its text
        out[max(0, ys.min() - margin):ys.max() + margin + 1, max(0, xs.min() - margin):xs.max() + margin + 1] = 0
    empty = FrameResult(result.source, result.frame_index, result.image_size_px)
    return heatmap_panel(out, np.zeros(out.shape[:2], np.float32), empty, style, language)


def overlay_in_language(stored_rgb: np.ndarray, image: np.ndarray, result: FrameResult, language: str,
                        style: OverlayStyle | None = None) -> np.ndarray:
    """``stored_rgb`` (the overlay as analysed, RGB) re-drawn in ``language`` from the original
    frame ``image`` and its ``result`` (see the module docstring). Raises ``ValueError`` when the
    image does not match the result or the stored overlay's layout is not one or two panels."""
    style = style or OverlayStyle()
    width, height = result.image_size_px
    left = draw_overlay(image, result, heatmap=None, language=language, style=style)
    if stored_rgb.shape[0] != height or stored_rgb.shape[1] not in (width, 2 * width + style.panel_gap_px):
        raise ValueError(f"stored overlay {stored_rgb.shape[1]}x{stored_rgb.shape[0]} px does not fit a "
                         f"{width}x{height} px frame")
    if stored_rgb.shape[1] == width:
        return left
    gap = stored_rgb[:, width:width + style.panel_gap_px]
    heat = retitle_heatmap_panel(stored_rgb[:, width + style.panel_gap_px:], result, language, style)
    return np.concatenate([left, gap, heat], axis=1)
