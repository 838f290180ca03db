"""Frame-level preprocessing: fan → overlays → pixel size → letterbox → grey levels.

``preprocess_frame`` is the one entry point used by training, inference and the service. The
expensive per-device work (fan detection, ruler search) can be cached with a :class:`FanCache`
keyed by the frame's device (``frame.metadata["device"]``) or, failing that, its source.
Heavy pixel work runs in model space (``size × size``), which keeps the real-time path fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from livus.config import PreprocessConfig
from livus.preprocess.fan import FanCache, FanResult, detect_fan
from livus.preprocess.geometry import Letterbox, full_image_letterbox, letterbox_for
from livus.preprocess.intensity import normalise, speckle_filter
from livus.preprocess.overlays import detect_overlays, remove_overlays
from livus.preprocess.spacing import RulerEstimate, RulerParams, estimate_spacing_from_ruler, resolve_spacing
from livus.types import Frame

__all__ = ["FanCache", "PreprocessedFrame", "preprocess_frame", "cache_key"]


@dataclass
class PreprocessedFrame:
    """A frame ready for the models, with everything needed to map results back.

    ``image``/``valid_mask`` are in model pixels; ``fan_polygon_px``/``overlay_mask`` in
    original pixels; ``pixel_spacing_mm`` is ``(dx, dy)`` mm per ORIGINAL pixel (divide by
    ``letterbox.scale`` for model pixels) or ``None`` when unknown.
    """

    image: np.ndarray  # (size, size) float32 in [0, 1], the model input
    valid_mask: np.ndarray  # (size, size) uint8, 1 inside the fan in model space
    letterbox: Letterbox
    fan_polygon_px: list[list[float]] | None  # original pixels
    overlay_mask: np.ndarray | None  # original pixels, uint8 1 where overlays were removed
    pixel_spacing_mm: tuple[float, float] | None
    spacing_source: str | None  # "dicom" | "ruler" | None
    warnings: list[str] = field(default_factory=list)
    fan_mask: np.ndarray | None = None  # original pixels, uint8 0/1 (the detected fan)


def cache_key(frame: Frame) -> str:
    """Key under which a frame's fan is cached: its device if known, else its source."""
    device = frame.metadata.get("device") if frame.metadata else None
    return str(device) if device else str(frame.source)


def _ruler_for(frame: Frame, fan: FanResult, cfg: PreprocessConfig, cache: FanCache | None) -> RulerEstimate | None:
    if frame.pixel_spacing_mm is not None or not cfg.ruler_spacing:
        return None
    params = RulerParams(tick_mm=cfg.ruler_tick_mm)
    if cache is None:
        return estimate_spacing_from_ruler(frame.pixels, fan.mask, params)
    return cache.aux(
        "ruler", frame.pixels, cache_key(frame), lambda: estimate_spacing_from_ruler(frame.pixels, fan.mask, params)
    )


def preprocess_frame(frame: Frame, cfg: PreprocessConfig, cache: FanCache | None = None) -> PreprocessedFrame:
    """Standardise one frame for the models (see module docstring for the steps)."""
    grey = frame.pixels
    h, w = grey.shape
    warnings: list[str] = []
    fan = cache.get(grey, cache_key(frame)) if cache is not None else detect_fan(grey)
    warnings.extend(fan.warnings)

    overlay = None
    if cfg.remove_overlays:
        overlay = detect_overlays(grey, fan.mask, frame.color_mask)

    ruler = _ruler_for(frame, fan, cfg, cache)
    spacing, source, spacing_warnings = resolve_spacing(frame.pixel_spacing_mm, ruler)
    warnings.extend(spacing_warnings)

    size = cfg.input_size_px
    lb = letterbox_for(fan.box_xyxy, size) if cfg.crop_to_fan else full_image_letterbox(w, h, size)
    if cache is not None:
        valid = cache.aux("valid_mask", grey, cache_key(frame) + f"|{lb}", lambda: lb.mask_to_model(fan.mask))
    else:
        valid = lb.mask_to_model(fan.mask)
    model_u8 = lb.image_to_model(grey)
    if overlay is not None:
        # only overlays on or near the fan reach the model input (the rest is zeroed); the margin
        # covers a model pixel plus the inpainting radius, so the inpainting sees the same mask
        margin = int(np.ceil((cfg.inpaint_radius_px + 2) / lb.scale))
        near_fan = (
            cache.aux("near_fan", grey, cache_key(frame) + f"|{margin}", lambda: _grow(fan.mask, margin))
            if cache is not None else _grow(fan.mask, margin)
        )
        ov_near = overlay & near_fan
        if ov_near.any():
            # any overlap with an overlay pixel marks the model pixel (area resampling of 0/255)
            ov_model = (lb.image_to_model(ov_near * np.uint8(255)) > 0).astype(np.uint8)
            model_u8 = remove_overlays(model_u8, ov_model, valid, cfg.inpaint_radius_px)
    model_u8 = speckle_filter(model_u8, cfg.speckle_filter)
    image = normalise(model_u8, valid, cfg.normalise, cfg.percentile_low, cfg.percentile_high, cfg.gamma)
    return PreprocessedFrame(
        image=image,
        valid_mask=valid,
        letterbox=lb,
        fan_polygon_px=fan.polygon_px,
        overlay_mask=overlay,
        pixel_spacing_mm=spacing,
        spacing_source=source,
        warnings=warnings,
        fan_mask=fan.mask,
    )


def _grow(mask: np.ndarray, margin_px: int) -> np.ndarray:
    """``mask`` (0/1) dilated by ``margin_px`` pixels (square)."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * margin_px + 1, 2 * margin_px + 1), np.uint8))


def fan_mask_model(pre: PreprocessedFrame) -> np.ndarray:
    """Fan mask of a preprocessed frame in model pixels (alias of ``valid_mask``, bool)."""
    return pre.valid_mask.astype(bool)


def original_overlay_preview(frame: Frame, pre: PreprocessedFrame) -> np.ndarray:
    """Original frame with overlays removed at full resolution (for before/after pictures)."""
    if pre.overlay_mask is None or not pre.overlay_mask.any():
        return frame.pixels.copy()
    from livus.shapes import polygon_mask

    fan = polygon_mask(pre.fan_polygon_px, frame.pixels.shape[1], frame.pixels.shape[0]) if pre.fan_polygon_px else None
    return remove_overlays(frame.pixels, pre.overlay_mask, fan)

