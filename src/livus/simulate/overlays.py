"""Burned-in scanner overlays (text, depth ruler, focus marker, calipers, body marker, grey
bar) drawn into the image together with their pixel mask (the label for overlay removal).

Depth ruler convention (shared with ``livus.preprocess``): a vertical column of short bright
(grey 255) horizontal ticks just outside the fan on its left or right side, one tick every
10 mm of depth from the skin line down, every 5th tick longer; tick lengths 4–12 px.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

from livus.io.dataset import LesionAnnotation
from livus.simulate.physics import ScanGeometry

RULER_TICK_MM = 10.0
RULER_SHORT_PX = 6
RULER_LONG_PX = 11
RULER_GAP_PX = 4
RULER_GREY = 255

_FIRST = ("WEI", "FANG", "LI", "JING", "MING", "XIU", "HUA", "JUN", "ANNA", "PETER", "MARIA", "JOHN", "LENA", "OMAR")
_LAST = ("ZHANG", "WANG", "LI", "CHEN", "LIU", "YANG", "HUANG", "ZHAO", "MUELLER", "SMITH", "ROSSI", "NOVAK")


def fake_patient_name(rng: np.random.Generator) -> str:
    """A fake ``LAST^FIRST`` name (never a real patient)."""
    return f"{_LAST[rng.integers(len(_LAST))]}^{_FIRST[rng.integers(len(_FIRST))]}"


@dataclass
class OverlayInfo:
    """Text content of the overlays."""

    vendor: str
    patient_name: str
    patient_id: str
    acquired_at: datetime
    probe_label: str
    freq_mhz: float
    gain_db: float
    dynamic_range_db: float
    depth_mm: float
    focus_mm: float
    extra_lines: list[str] = field(default_factory=list)


@dataclass
class OverlayOptions:
    ruler_side: str = "right"  # "left" or "right"
    text: bool = True
    focus_marker: bool = True
    calipers: bool = False
    body_marker: bool = True
    grey_bar: bool = True

    @staticmethod
    def random(rng: np.random.Generator, has_lesions: bool) -> "OverlayOptions":
        return OverlayOptions(
            ruler_side="left" if rng.random() < 0.4 else "right",
            text=rng.random() < 0.95,
            focus_marker=rng.random() < 0.85,
            calipers=has_lesions and rng.random() < 0.35,
            body_marker=rng.random() < 0.6,
            grey_bar=rng.random() < 0.5,
        )


class _Layers:
    """One alpha canvas per grey value; composited onto the image at the end."""

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self.canvases: dict[int, np.ndarray] = {}
        self.direct = np.zeros(shape, np.uint8)  # mask of pixels set directly (grey bar)
        self.direct_values = np.zeros(shape, np.uint8)

    def __getitem__(self, grey: int) -> np.ndarray:
        if grey not in self.canvases:
            self.canvases[grey] = np.zeros(self.shape, np.uint8)
        return self.canvases[grey]

    def composite(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = img.astype(np.float32)
        mask = self.direct > 0
        out[mask] = self.direct_values[mask]
        for grey, alpha in self.canvases.items():
            a = alpha.astype(np.float32) / 255.0
            out = out * (1 - a) + grey * a
            mask |= alpha > 0
        return np.clip(out + 0.5, 0, 255).astype(np.uint8), mask.astype(np.uint8)


def ruler_x_range(geom: ScanGeometry, side: str) -> tuple[int, int]:
    """Columns of the ruler ticks' anchor: (x of the tick end next to the fan, direction)."""
    xs = [p[0] for p in geom.fan_polygon]
    if side == "right":
        return int(np.ceil(max(xs))) + RULER_GAP_PX, +1
    return int(np.floor(min(xs))) - RULER_GAP_PX, -1


def ruler_tick_rows(geom: ScanGeometry) -> np.ndarray:
    """Image rows of the ruler ticks (one per 10 mm of depth from the skin line)."""
    n = int(np.floor(geom.profile.depth_mm / RULER_TICK_MM + 1e-6)) + 1
    rows = geom.v_skin + np.arange(n) * RULER_TICK_MM / geom.spacing_mm
    return np.round(rows[rows < geom.height - 1]).astype(int)


def draw_ruler(layers: _Layers, geom: ScanGeometry, side: str, font_scale: float, focus: bool) -> None:
    x_anchor, direction = ruler_x_range(geom, side)
    if side == "right" and x_anchor + RULER_LONG_PX >= geom.width:
        x_anchor, direction = ruler_x_range(geom, "left")
    if x_anchor - RULER_LONG_PX < 0 and direction < 0:
        return
    canvas = layers[RULER_GREY]
    for k, y in enumerate(ruler_tick_rows(geom)):
        length = RULER_LONG_PX if k % 5 == 0 else RULER_SHORT_PX
        x_end = x_anchor + direction * (length - 1)
        cv2.line(canvas, (x_anchor, int(y)), (x_end, int(y)), 255, 1, cv2.LINE_8)
        if k % 5 == 0 and k > 0:
            label = f"{k}"
            (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale * 0.8, 1)
            tx = x_end + 3 if direction > 0 else x_end - 3 - tw
            if 0 <= tx and tx + tw < geom.width:
                cv2.putText(layers[200], label, (tx, int(y + th / 2)), cv2.FONT_HERSHEY_SIMPLEX, font_scale * 0.8, 255, 1, cv2.LINE_AA)
    if focus:
        yf = geom.v_skin + geom.profile.focus_mm / geom.spacing_mm
        x0 = x_anchor + direction * (RULER_LONG_PX + 2)
        tri = np.array([[x0, yf], [x0 + direction * 7, yf - 4], [x0 + direction * 7, yf + 4]], np.int32)
        if 0 <= tri[:, 0].min() and tri[:, 0].max() < geom.width:
            cv2.fillPoly(layers[230], [tri], 255)


def draw_text_block(layers: _Layers, lines: list[str], origin: tuple[int, int], font_scale: float, width: int,
                    align_right: bool = False, grey: int = 210) -> None:
    y = origin[1]
    for line in lines:
        (tw, th), base = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        x = width - origin[0] - tw if align_right else origin[0]
        cv2.putText(layers[grey], line, (max(x, 0), y + th), cv2.FONT_HERSHEY_SIMPLEX, font_scale, 255, 1, cv2.LINE_AA)
        y += th + base + 3


def draw_calipers(layers: _Layers, lesions: list[LesionAnnotation], spacing_mm: float, font_scale: float,
                  height: int) -> None:
    canvas = layers[255]
    lines = []
    for k, les in enumerate(lesions[:2], start=1):
        cx, cy, long_px, _, ang = les.ellipse
        dx, dy = np.cos(np.radians(ang)) * long_px / 2, np.sin(np.radians(ang)) * long_px / 2
        p0 = (int(round(cx - dx)), int(round(cy - dy)))
        p1 = (int(round(cx + dx)), int(round(cy + dy)))
        for p in (p0, p1):
            cv2.drawMarker(canvas, p, 255, cv2.MARKER_CROSS, 9, 1, cv2.LINE_8)
        n = int(max(long_px / 6, 2))
        for t in np.linspace(0.15, 0.85, n):
            q = (int(round(p0[0] + t * (p1[0] - p0[0]))), int(round(p0[1] + t * (p1[1] - p0[1]))))
            cv2.circle(canvas, q, 1, 255, -1, cv2.LINE_8)
        lines.append(f"D{k} {long_px * spacing_mm / 10:.2f} cm")
    draw_text_block(layers, lines, (8, height - 14 - 18 * len(lines)), font_scale, 0, grey=240)


def draw_body_marker(layers: _Layers, rng: np.random.Generator, width: int, height: int, side: str) -> None:
    s = max(height // 16, 18)
    cx = width - 2 * s if side == "right" else 2 * s
    cy = height - int(1.6 * s)
    canvas = layers[190]
    cv2.ellipse(canvas, (cx, cy), (s // 2, s), 0, 0, 360, 255, 1, cv2.LINE_AA)
    ang = rng.uniform(-40, 40)
    px, py = cx + int(s * 0.25), cy - int(s * 0.2)
    d = np.array([np.cos(np.radians(ang)), np.sin(np.radians(ang))]) * s * 0.35
    cv2.line(canvas, (int(px - d[0]), int(py - d[1])), (int(px + d[0]), int(py + d[1])), 255, 2, cv2.LINE_8)


def draw_grey_bar(layers: _Layers, width: int, height: int, side: str) -> None:
    h = max(height // 6, 40)
    w = 8
    x0 = width - 22 if side == "right" else 14
    y0 = int(height * 0.3)
    ramp = np.linspace(255, 0, h).astype(np.uint8)[:, None]
    layers.direct[y0:y0 + h, x0:x0 + w] = 1
    layers.direct_values[y0:y0 + h, x0:x0 + w] = ramp


def draw_overlays(img: np.ndarray, geom: ScanGeometry, info: OverlayInfo, options: OverlayOptions,
                  rng: np.random.Generator, lesions: list[LesionAnnotation] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Burn overlays into ``img`` (uint8). Returns the new image and the overlay mask (uint8
    0/1: every pixel an overlay changed or may have changed)."""
    H, W = img.shape
    layers = _Layers((H, W))
    fs = float(np.clip(W / 1800, 0.3, 0.6))
    other = "left" if options.ruler_side == "right" else "right"
    if options.text:
        left = [info.vendor, info.patient_name.replace("^", " "), f"ID {info.patient_id}",
                info.acquired_at.strftime("%Y-%m-%d %H:%M:%S")]
        right = [f"{info.probe_label} {info.freq_mhz:.1f}MHz", f"Gn {50 + info.gain_db:.0f}  DR {info.dynamic_range_db:.0f}",
                 f"D {info.depth_mm / 10:.1f}cm", *info.extra_lines]
        # all text on the side away from the ruler, so the ruler column stays clean
        draw_text_block(layers, left + right, (6, 6), fs, W, align_right=options.ruler_side == "left")
    draw_ruler(layers, geom, options.ruler_side, fs, options.focus_marker)
    if options.calipers and lesions:
        draw_calipers(layers, list(lesions), geom.spacing_mm, fs, H)
    if options.body_marker:
        draw_body_marker(layers, rng, W, H, other)
    if options.grey_bar:
        draw_grey_bar(layers, W, H, other)
    return layers.composite(img)
