"""Letterbox geometry: original-image pixels ↔ model-input pixels, with an exact inverse.

Convention (see ``livus.types``): pixel centres sit at integer coordinates, so pixel ``i`` covers
``[i - 0.5, i + 0.5]``. The forward map of a point is the affine map

    model = (orig - crop_x0 + 0.5) * scale - 0.5 + pad

which is the same half-pixel convention that ``cv2.resize`` and ``cv2.warpAffine`` use, so the
pixels produced by :meth:`Letterbox.image_to_model` line up exactly with mapped coordinates.

How the image is made: the crop box (``crop_w × crop_h`` original pixels starting at pixel
``(crop_x0, crop_y0)``) is centred on a zero square of side ``max(crop_w, crop_h)`` by an
integer offset, and that square is resized to ``size × size``. The scale is therefore exactly
``size / side`` on both axes (uniform, so ellipse angles are kept), and the padding in model
pixels is ``offset * scale``. Parts of the crop box outside the image are zero as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """Maps original-image pixels ↔ model-input pixels: crop to box, uniform scale, pad to size×size.

    ``crop_x0, crop_y0``: first cropped pixel (original pixels, integer-valued);
    ``crop_w, crop_h``: crop size (original pixels); ``scale``: model pixels per original pixel;
    ``pad_x, pad_y``: padding before the crop content (model pixels); ``size``: model input side.
    """

    crop_x0: float
    crop_y0: float
    crop_w: int
    crop_h: int
    scale: float
    pad_x: float
    pad_y: float
    size: int

    # --- affine maps -------------------------------------------------------------------------
    @property
    def matrix_to_model(self) -> np.ndarray:
        """2×3 affine matrix (original pixel → model pixel)."""
        s = self.scale
        tx = (0.5 - self.crop_x0) * s - 0.5 + self.pad_x
        ty = (0.5 - self.crop_y0) * s - 0.5 + self.pad_y
        return np.array([[s, 0.0, tx], [0.0, s, ty]], dtype=np.float64)

    @property
    def matrix_to_original(self) -> np.ndarray:
        """2×3 affine matrix (model pixel → original pixel)."""
        return cv2.invertAffineTransform(self.matrix_to_model)

    def points_to_model(self, pts_xy: np.ndarray) -> np.ndarray:
        """``(N, 2)`` original-pixel points → model-pixel points (float64)."""
        p = np.asarray(pts_xy, dtype=np.float64)
        s = self.scale
        out = np.empty_like(p)
        out[..., 0] = (p[..., 0] - self.crop_x0 + 0.5) * s - 0.5 + self.pad_x
        out[..., 1] = (p[..., 1] - self.crop_y0 + 0.5) * s - 0.5 + self.pad_y
        return out

    def points_to_original(self, pts_xy: np.ndarray) -> np.ndarray:
        """``(N, 2)`` model-pixel points → original-pixel points (float64)."""
        p = np.asarray(pts_xy, dtype=np.float64)
        s = self.scale
        out = np.empty_like(p)
        out[..., 0] = (p[..., 0] + 0.5 - self.pad_x) / s - 0.5 + self.crop_x0
        out[..., 1] = (p[..., 1] + 0.5 - self.pad_y) / s - 0.5 + self.crop_y0
        return out

    # --- shapes ------------------------------------------------------------------------------
    def boxes_to_model(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """``(N, 4)`` boxes ``[x0, y0, x1, y1]`` (original pixels) → model pixels."""
        b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        return self.points_to_model(b.reshape(-1, 2)).reshape(-1, 4)

    def boxes_to_original(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """``(N, 4)`` boxes ``[x0, y0, x1, y1]`` (model pixels) → original pixels."""
        b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        return self.points_to_original(b.reshape(-1, 2)).reshape(-1, 4)

    def ellipses_to_model(self, ellipses: np.ndarray) -> np.ndarray:
        """``(N, 5)`` ellipses ``[cx, cy, long, short, angle_deg]`` (original) → model pixels.

        Axes are full diameters and scale by ``scale``; the angle is unchanged (uniform scale).
        """
        e = np.asarray(ellipses, dtype=np.float64).reshape(-1, 5).copy()
        e[:, :2] = self.points_to_model(e[:, :2])
        e[:, 2:4] *= self.scale
        return e

    def ellipses_to_original(self, ellipses: np.ndarray) -> np.ndarray:
        """``(N, 5)`` ellipses ``[cx, cy, long, short, angle_deg]`` (model) → original pixels."""
        e = np.asarray(ellipses, dtype=np.float64).reshape(-1, 5).copy()
        e[:, :2] = self.points_to_original(e[:, :2])
        e[:, 2:4] /= self.scale
        return e

    def polygon_to_model(self, poly: list[list[float]] | np.ndarray) -> list[list[float]]:
        """Polygon ``[[x, y], ...]`` (original pixels) → model pixels."""
        return self.points_to_model(np.asarray(poly, dtype=np.float64).reshape(-1, 2)).tolist()

    def polygon_to_original(self, poly: list[list[float]] | np.ndarray) -> list[list[float]]:
        """Polygon ``[[x, y], ...]`` (model pixels) → original pixels."""
        return self.points_to_original(np.asarray(poly, dtype=np.float64).reshape(-1, 2)).tolist()

    # --- rasters -----------------------------------------------------------------------------
    @property
    def _side(self) -> int:
        return max(self.crop_w, self.crop_h)

    def _square_canvas(self, image: np.ndarray) -> np.ndarray:
        """The crop box centred in a zero square of side ``max(crop_w, crop_h)`` (original pixels)."""
        side = self._side
        ox = int(round(self.pad_x / self.scale))
        oy = int(round(self.pad_y / self.scale))
        x0, y0 = int(self.crop_x0), int(self.crop_y0)
        h, w = image.shape[:2]
        sx0, sy0 = max(x0, 0), max(y0, 0)
        sx1, sy1 = min(x0 + self.crop_w, w), min(y0 + self.crop_h, h)
        if (ox, oy) == (0, 0) and (sx0, sy0) == (x0, y0) and side == self.crop_w == self.crop_h and (sx1, sy1) == (x0 + side, y0 + side):
            return image[y0 : y0 + side, x0 : x0 + side]
        canvas = np.zeros((side, side) + image.shape[2:], dtype=image.dtype)
        if sx1 > sx0 and sy1 > sy0:
            dx, dy = ox + sx0 - x0, oy + sy0 - y0
            canvas[dy : dy + sy1 - sy0, dx : dx + sx1 - sx0] = image[sy0:sy1, sx0:sx1]
        return canvas

    def image_to_model(self, image: np.ndarray, interpolation: int | None = None) -> np.ndarray:
        """Crop + resize + pad (pad value 0) an original image into the ``size × size`` model input.

        ``interpolation`` defaults to ``cv2.INTER_AREA`` when shrinking and ``cv2.INTER_LINEAR``
        when enlarging. The dtype is kept.
        """
        canvas = self._square_canvas(image)
        if interpolation is None:
            interpolation = cv2.INTER_AREA if self.scale < 1.0 else cv2.INTER_LINEAR
        if canvas.shape[0] == self.size:
            return np.ascontiguousarray(canvas)
        factor = canvas.shape[0] // self.size
        if interpolation == cv2.INTER_AREA and factor >= 2:
            # fast path: exact integer area reduction (zero-padded to a multiple of the factor at
            # the far edges, which moves no pixel), then the exact affine map to model pixels.
            side = canvas.shape[0]
            padded = -(-side // factor) * factor
            if padded != side:
                canvas = cv2.copyMakeBorder(canvas, 0, padded - side, 0, padded - side, cv2.BORDER_CONSTANT, value=0)
            small = cv2.resize(canvas, (padded // factor, padded // factor), interpolation=cv2.INTER_AREA)
            fs = factor * self.scale
            m = np.array([[fs, 0.0, 0.5 * fs - 0.5], [0.0, fs, 0.5 * fs - 0.5]])
            return cv2.warpAffine(small, m, (self.size, self.size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return cv2.resize(canvas, (self.size, self.size), interpolation=interpolation)

    def mask_to_model(self, mask: np.ndarray, labels: bool | None = None) -> np.ndarray:
        """Original-pixel mask → model pixels (``uint8``).

        A binary mask is area-resampled and thresholded at 0.5 (the model pixel is set when at
        least half of it is covered); a label mask (values > 1, or ``labels=True``) uses
        nearest neighbour so instance values are kept.
        """
        m = np.asarray(mask)
        if labels is None:
            labels = _is_label_mask(m)
        if labels:
            return cv2.warpAffine(
                m.astype(np.uint8), self.matrix_to_model, (self.size, self.size), flags=cv2.INTER_NEAREST,
                borderMode=cv2.BORDER_CONSTANT, borderValue=0,
            )
        soft = self.image_to_model((m > 0).astype(np.float32))
        return (soft >= 0.5).astype(np.uint8)

    def mask_to_original(
        self, mask_model: np.ndarray, original_size_wh: tuple[int, int], labels: bool | None = None
    ) -> np.ndarray:
        """Model-pixel mask → original pixels (``original_size_wh`` = ``(width, height)``).

        A binary (0/1, bool) or soft mask is bilinearly resampled and thresholded at 0.5, which
        gives smooth outlines; a label mask (integer values > 1, or ``labels=True``) uses nearest
        neighbour so instance values are kept. Returns ``uint8``.
        """
        m = np.asarray(mask_model)
        if labels is None:
            labels = _is_label_mask(m)
        w, h = int(original_size_wh[0]), int(original_size_wh[1])
        flags = cv2.WARP_INVERSE_MAP
        if labels:
            return cv2.warpAffine(
                m.astype(np.uint8), self.matrix_to_model, (w, h), flags=flags | cv2.INTER_NEAREST,
                borderMode=cv2.BORDER_CONSTANT, borderValue=0,
            )
        soft = cv2.warpAffine(
            m.astype(np.float32), self.matrix_to_model, (w, h), flags=flags | cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )
        return (soft >= 0.5).astype(np.uint8)


def _is_label_mask(m: np.ndarray) -> bool:
    """True for integer masks holding instance values above 1."""
    return m.dtype != bool and np.issubdtype(m.dtype, np.integer) and m.size > 0 and int(m.max()) > 1


def letterbox_for(crop_box_xyxy: tuple[float, float, float, float] | list[float], size: int) -> Letterbox:
    """Letterbox that crops the original pixels covered by ``crop_box_xyxy`` and fits them in
    ``size × size``.

    ``crop_box_xyxy`` is ``[x0, y0, x1, y1]`` in original pixel coordinates (centres at
    integers); the crop keeps every pixel from ``floor(x0)`` to ``ceil(x1)`` inclusive (and the
    same in y), so the box is never cut.
    """
    x0, y0, x1, y1 = (float(v) for v in crop_box_xyxy)
    if x1 < x0 or y1 < y0:
        raise ValueError(f"empty crop box {crop_box_xyxy}")
    if size < 1:
        raise ValueError(f"model size must be positive, got {size}")
    cx0, cy0 = math.floor(x0), math.floor(y0)
    cw, ch = math.ceil(x1) - cx0 + 1, math.ceil(y1) - cy0 + 1
    side = max(cw, ch)
    scale = size / side
    ox, oy = (side - cw) // 2, (side - ch) // 2
    return Letterbox(
        crop_x0=float(cx0), crop_y0=float(cy0), crop_w=int(cw), crop_h=int(ch),
        scale=float(scale), pad_x=float(ox * scale), pad_y=float(oy * scale), size=int(size),
    )


def full_image_letterbox(width: int, height: int, size: int) -> Letterbox:
    """Letterbox of the whole image (no crop): ``width × height`` original pixels."""
    return letterbox_for((0, 0, width - 1, height - 1), size)
