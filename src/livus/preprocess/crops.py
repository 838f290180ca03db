"""Lesion crops for the classifier: the crop rule and the crop ↔ original pixel mapping.

One rule, used identically in training and inference:

* the crop is a square centred on the lesion's axis-aligned box (original-image pixels), with
  side ``max(w, h) · (1 + 2·margin)`` and at least ``min_side_px``;
* it is resampled to ``size_px × size_px`` model pixels; parts outside the image are zero;
* channel 0 is the grey image scaled to ``[0, 1]``, channel 1 the lesion mask (0/1, area
  averaged at the crop's resolution).

Every crop is described by a 2×3 affine matrix ``M`` mapping CROP pixel coordinates
``(u, v, 1)`` to ORIGINAL pixel coordinates ``(x, y)`` (pixel centres at integers, as in
``livus.types``). Training augmentations (rotation, scale, flip, shift) are compositions into the
same matrix, so a heat map computed on a crop maps back onto the original image with
:func:`crop_to_original` whatever the crop was.

OpenCV does the resampling (``cv2.resize`` with area averaging for large reductions, then
``cv2.warpAffine``); only the matrix bookkeeping is written here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropBox:
    """Square crop in ORIGINAL-image pixels: centre ``(cx_px, cy_px)`` and side ``side_px``."""

    cx_px: float
    cy_px: float
    side_px: float

    @property
    def xyxy(self) -> list[float]:
        h = self.side_px / 2.0
        return [self.cx_px - h, self.cy_px - h, self.cx_px + h, self.cy_px + h]


def crop_box_for_bbox(bbox_xyxy: list[float] | tuple[float, ...], margin: float, min_side_px: float = 32.0) -> CropBox:
    """The crop rule: square around a lesion box ``[x0, y0, x1, y1]`` (original pixels)."""
    x0, y0, x1, y1 = (float(v) for v in bbox_xyxy)
    side = max(x1 - x0, y1 - y0, 1.0) * (1.0 + 2.0 * margin)
    return CropBox((x0 + x1) / 2.0, (y0 + y1) / 2.0, max(side, float(min_side_px)))


def crop_matrix(
    box: CropBox,
    size_px: int,
    rotation_deg: float = 0.0,
    scale: float = 1.0,
    flip: bool = False,
    shift_px: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """2×3 affine matrix mapping crop pixels ``(u, v)`` of a ``size_px`` crop to original pixels.

    The optional augmentation acts about the crop centre in crop pixels: ``scale > 1`` zooms in,
    ``flip`` mirrors left–right, ``shift_px`` moves the window (crop pixels).
    """
    a = box.side_px / size_px  # original pixels per crop pixel
    c = (size_px - 1) / 2.0
    base = np.array([[a, 0.0, box.cx_px - box.side_px / 2.0 + 0.5 * a], [0.0, a, box.cy_px - box.side_px / 2.0 + 0.5 * a], [0, 0, 1]])
    t = math.radians(rotation_deg)
    lin = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]) / scale
    if flip:
        lin = lin @ np.array([[-1.0, 0.0], [0.0, 1.0]])
    aug = np.eye(3)
    aug[:2, :2] = lin
    aug[:2, 2] = np.array([c, c]) - lin @ np.array([c, c]) + np.asarray(shift_px, float)
    return (base @ aug)[:2]


def _pixel_scale(matrix: np.ndarray) -> float:
    """Original pixels per crop pixel (geometric mean of the two axes)."""
    return float(math.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def warp_to_crop(array: np.ndarray, matrix: np.ndarray, size_px: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resample ``array`` (original pixels, 2-D) into a ``size_px`` crop given by ``matrix``.

    Large reductions are area-averaged first (``cv2.resize(INTER_AREA)`` on the crop's footprint)
    so speckle does not alias; outside the image the crop is zero.
    """
    h, w = array.shape[:2]
    corners = np.array([[-0.5, -0.5, 1], [size_px - 0.5, -0.5, 1], [-0.5, size_px - 0.5, 1], [size_px - 0.5, size_px - 0.5, 1]])
    pts = corners @ matrix.T
    x0 = max(int(math.floor(pts[:, 0].min())) - 2, 0)
    y0 = max(int(math.floor(pts[:, 1].min())) - 2, 0)
    x1 = min(int(math.ceil(pts[:, 0].max())) + 3, w)
    y1 = min(int(math.ceil(pts[:, 1].max())) + 3, h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((size_px, size_px), array.dtype)
    roi = array[y0:y1, x0:x1]
    m = matrix.copy()
    m[:, 2] -= (x0, y0)  # crop → ROI pixels
    reduction = _pixel_scale(matrix)
    if reduction > 1.5:
        rh, rw = roi.shape[:2]
        nw, nh = max(int(round(rw / reduction)), 1), max(int(round(rh / reduction)), 1)
        roi = cv2.resize(roi, (nw, nh), interpolation=cv2.INTER_AREA)
        sx, sy = nw / rw, nh / rh  # ROI pixel p ↦ resized pixel (p + 0.5)·s − 0.5
        m = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]]) @ np.vstack([m, [0, 0, 1]])
    return cv2.warpAffine(
        roi, m, (size_px, size_px), flags=interpolation | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def extract_crop(image_grey: np.ndarray, lesion_mask: np.ndarray, matrix: np.ndarray, size_px: int) -> np.ndarray:
    """Two-channel float32 crop ``(2, size_px, size_px)``: grey image in ``[0, 1]`` and lesion mask.

    ``image_grey`` is uint8 (original pixels); ``lesion_mask`` is the mask of THIS lesion (any
    dtype, > 0 inside), same size as the image.
    """
    img = warp_to_crop(image_grey, matrix, size_px).astype(np.float32) / 255.0
    msk = warp_to_crop((lesion_mask > 0).astype(np.float32), matrix, size_px)
    return np.stack([img, np.clip(msk, 0.0, 1.0)]).astype(np.float32)


def crop_to_original(values: np.ndarray, matrix: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Map a crop-sized float map back onto the original image (zero outside the crop)."""
    h, w = image_shape[:2]
    return cv2.warpAffine(
        values.astype(np.float32), matrix.astype(np.float64), (w, h), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )


def lesion_region_mask(
    image_shape: tuple[int, ...], polygon_px: list[list[float]] | None, ellipse: tuple[float, float, float, float, float] | None
) -> np.ndarray:
    """uint8 0/1 mask of one lesion in original pixels: its polygon, else its ellipse
    ``(cx, cy, long, short, angle_deg)`` (axes are full diameters)."""
    h, w = image_shape[:2]
    mask = np.zeros((h, w), np.uint8)
    if polygon_px is not None and len(polygon_px) >= 3:
        pts = np.round(np.asarray(polygon_px, np.float64) * 16).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
    elif ellipse is not None:
        cx, cy, long_px, short_px, angle = ellipse
        cv2.ellipse(
            mask, (int(round(cx * 16)), int(round(cy * 16))),
            (max(int(round(long_px * 8)), 1), max(int(round(short_px * 8)), 1)), float(angle), 0, 360, 1, -1, cv2.LINE_8, 4,
        )
    return mask
