"""Result overlays: the frame with fan, liver, lesion outlines, axes and labels drawn on it.

All geometry comes from a :class:`~livus.types.FrameResult` in ORIGINAL-image pixels, and the
overlay is drawn at the original size, so what is drawn is exactly what was measured. Lines are
drawn with OpenCV (anti-aliased, with a dark edge under each colour so that it survives on any
grey); labels are drawn with Pillow because OpenCV cannot draw Chinese text (the bundled
Noto Sans SC subset, see :mod:`livus.report.fonts`). A Grad-CAM heatmap, when given, becomes a
second panel to the right of the first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from livus.report.fonts import pil_font
from livus.report.i18n import text
from livus.types import FrameResult, Lesion

RGB = tuple[int, int, int]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in overlay pixels


@dataclass
class OverlayStyle:
    """Colours (RGB) and sizes of an overlay; sizes scale with the image's shorter side."""

    lesion_rgb: RGB = (255, 225, 0)  # yellow
    long_axis_rgb: RGB = (0, 255, 255)  # cyan
    short_axis_rgb: RGB = (255, 64, 255)  # magenta
    fan_rgb: RGB = (110, 150, 255)  # light blue
    liver_rgb: RGB = (90, 230, 120)  # green
    edge_rgb: RGB = (0, 0, 0)  # dark edge under lines and text
    warning_rgb: RGB = (255, 170, 60)  # orange
    label_bg_rgba: tuple[int, int, int, int] = (0, 0, 0, 175)
    line_px_per_side: float = 1 / 350  # lesion line thickness = short side × this (≥ 1 px)
    font_px_per_side: float = 1 / 30  # label font size = short side × this, clamped below
    font_px_min: int = 13
    font_px_max: int = 44
    heatmap_max_alpha: float = 0.65  # blend weight where the heatmap is 1
    panel_gap_px: int = 6


def _line_px(shape: tuple[int, ...], style: OverlayStyle) -> int:
    return max(1, int(round(min(shape[:2]) * style.line_px_per_side)))


def _font_px(shape: tuple[int, ...], style: OverlayStyle) -> int:
    size = int(round(min(shape[:2]) * style.font_px_per_side))
    return int(np.clip(size, style.font_px_min, style.font_px_max))


def _as_int_points(points: list[list[float]] | np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)


def _polyline(img: np.ndarray, points: np.ndarray, rgb: RGB, thickness: int, edge: RGB, closed: bool = True) -> None:
    """Coloured line with a 1-px-wider dark edge on each side (visible on bright and dark grey)."""
    cv2.polylines(img, [points], closed, edge, thickness + 2, cv2.LINE_AA)
    cv2.polylines(img, [points], closed, rgb, thickness, cv2.LINE_AA)


def lesion_outline_px(lesion: Lesion) -> np.ndarray:
    """Lesion outline as an ``(N, 2)`` float array in original pixels: its mask polygon, or the
    oriented ellipse of its axes when it has no polygon."""
    if len(lesion.polygon_px) >= 3:
        return np.asarray(lesion.polygon_px, dtype=np.float64)
    t = np.linspace(0.0, 2.0 * math.pi, 72, endpoint=False)
    a = math.radians(lesion.angle_deg)
    ra, rb = lesion.long_axis_px / 2.0, lesion.short_axis_px / 2.0
    x = ra * np.cos(t)
    y = rb * np.sin(t)
    cx, cy = lesion.center_px
    return np.stack([cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)], axis=1)


def axis_endpoints_px(lesion: Lesion) -> tuple[np.ndarray, np.ndarray]:
    """End points ``(2, 2)`` of the long and of the short axis (full diameters, original px)."""
    a = math.radians(lesion.angle_deg)
    c = np.asarray(lesion.center_px, dtype=np.float64)
    u = np.array([math.cos(a), math.sin(a)])
    v = np.array([-math.sin(a), math.cos(a)])
    long_ends = np.stack([c - u * lesion.long_axis_px / 2.0, c + u * lesion.long_axis_px / 2.0])
    short_ends = np.stack([c - v * lesion.short_axis_px / 2.0, c + v * lesion.short_axis_px / 2.0])
    return long_ends, short_ends


def format_probability(p: float | None, language: str) -> str:
    """``0.83`` → ``"0.83"``; ``None`` → "未评估" / "—"."""
    return text("not_assessed_short", language) if p is None else f"{p:.2f}"


def format_size(lesion: Lesion, spacing_known: bool) -> str:
    """Long × short axis in mm (one decimal) or in px when the pixel spacing is unknown."""
    if spacing_known and lesion.long_axis_mm is not None and lesion.short_axis_mm is not None:
        return f"{lesion.long_axis_mm:.1f} × {lesion.short_axis_mm:.1f} mm"
    return f"{lesion.long_axis_px:.0f} × {lesion.short_axis_px:.0f} px"


def lesion_label_lines(lesion: Lesion, number: int, spacing_known: bool, language: str) -> list[str]:
    """The three label lines of a lesion: number + detection score, malignancy, size."""
    return [
        f"#{number}  {text('det', language)} {lesion.score:.2f}",
        f"{text('malig_short', language)} {format_probability(lesion.malignancy, language)}",
        format_size(lesion, spacing_known),
    ]


def _overlap_area(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def _clamp_box(box: Box, width: int, height: int) -> Box:
    w, h = box[2] - box[0], box[3] - box[1]
    x0 = float(np.clip(box[0], 0, max(0, width - w)))
    y0 = float(np.clip(box[1], 0, max(0, height - h)))
    return (x0, y0, x0 + w, y0 + h)


def place_label(
    size_wh: tuple[float, float], target: Box, occupied: list[Box], image_wh: tuple[int, int], gap: float
) -> Box:
    """Box for a label of ``size_wh`` next to ``target`` (a lesion's box), inside the image.

    Tries above, below, right and left of the target; takes the first candidate that lies
    inside the image and overlaps nothing in ``occupied``, else the clamped candidate with the
    least overlap.
    """
    w, h = size_wh
    x0, y0, x1, y1 = target
    cy = (y0 + y1) / 2.0
    candidates: list[Box] = [
        (x0, y0 - gap - h, x0 + w, y0 - gap),
        (x0, y1 + gap, x0 + w, y1 + gap + h),
        (x1 + gap, cy - h / 2, x1 + gap + w, cy + h / 2),
        (x0 - gap - w, cy - h / 2, x0 - gap, cy + h / 2),
        (x1 - w, y0 - gap - h, x1, y0 - gap),
        (x1 - w, y1 + gap, x1, y1 + gap + h),
    ]
    width, height = image_wh
    best: Box | None = None
    best_cost = math.inf
    for cand in candidates:
        inside = cand[0] >= 0 and cand[1] >= 0 and cand[2] <= width and cand[3] <= height
        clamped = _clamp_box(cand, width, height)
        cost = sum(_overlap_area(clamped, o) for o in occupied)
        if inside and cost == 0:
            return clamped
        cost += 0.0 if inside else 1.0  # prefer an unclamped place at equal overlap
        if cost < best_cost:
            best, best_cost = clamped, cost
    assert best is not None
    return best


class _LabelPainter:
    """Draws text boxes with Pillow (CJK-capable) into an RGB array, in place.

    Only the pixels under each box go through Pillow (crop → composite → paste back), which
    keeps a label cheap on large frames.
    """

    def __init__(self, rgb: np.ndarray, font_px: int, style: OverlayStyle) -> None:
        self.rgb = rgb
        self.font = pil_font(font_px)
        self.font_px = font_px
        self.pad = max(2, font_px // 4)
        self.stroke = max(1, font_px // 12)
        self.style = style

    def box_size(self, lines: list[str]) -> tuple[float, float]:
        widths = [self.font.getlength(line) for line in lines]
        line_h = self.font_px * 1.25
        return max(widths) + 2 * self.pad, line_h * len(lines) + 2 * self.pad

    def paint(self, box: Box, lines: list[str], colours: list[RGB]) -> None:
        height, width = self.rgb.shape[:2]
        x0, y0 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
        x1, y1 = min(width, int(math.ceil(box[2])) + 1), min(height, int(math.ceil(box[3])) + 1)
        if x1 <= x0 or y1 <= y0:
            return
        base = Image.fromarray(np.ascontiguousarray(self.rgb[y0:y1, x0:x1])).convert("RGBA")
        layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        local = (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0)
        draw.rounded_rectangle(local, radius=max(2, self.pad), fill=self.style.label_bg_rgba)
        y = local[1] + self.pad
        for line, colour in zip(lines, colours):
            draw.text((local[0] + self.pad, y), line, font=self.font, fill=colour + (255,),
                      stroke_width=self.stroke, stroke_fill=self.style.edge_rgb + (255,))
            y += self.font_px * 1.25
        self.rgb[y0:y1, x0:x1] = np.asarray(Image.alpha_composite(base, layer).convert("RGB"))

    def result(self) -> np.ndarray:
        return self.rgb


def _to_rgb(image_grey: np.ndarray) -> np.ndarray:
    if image_grey.ndim == 2:
        grey = image_grey
    elif image_grey.ndim == 3 and image_grey.shape[2] in (3, 4):
        grey = cv2.cvtColor(np.ascontiguousarray(image_grey[..., :3]), cv2.COLOR_RGB2GRAY)
    else:
        raise ValueError(f"expected a grey (H, W) image, got shape {image_grey.shape}")
    if grey.dtype != np.uint8:
        grey = np.clip(grey, 0, 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)


def _draw_geometry(rgb: np.ndarray, result: FrameResult, style: OverlayStyle, with_axes: bool,
                   with_regions: bool = True) -> None:
    """Lesion outlines, and optionally the axes and the fan and liver outlines, in place."""
    thick = _line_px(rgb.shape, style)
    thin = max(1, thick // 2)
    if with_regions and result.fan_polygon_px and len(result.fan_polygon_px) >= 3:
        _polyline(rgb, _as_int_points(result.fan_polygon_px), style.fan_rgb, thin, style.edge_rgb)
    if with_regions and result.liver_polygon_px and len(result.liver_polygon_px) >= 3:
        _polyline(rgb, _as_int_points(result.liver_polygon_px), style.liver_rgb, thin, style.edge_rgb)
    for lesion in result.lesions:
        _polyline(rgb, _as_int_points(lesion_outline_px(lesion)), style.lesion_rgb, thick, style.edge_rgb)
        if not with_axes:
            continue
        long_ends, short_ends = axis_endpoints_px(lesion)
        for ends, colour in ((long_ends, style.long_axis_rgb), (short_ends, style.short_axis_rgb)):
            pts = _as_int_points(ends)
            _polyline(rgb, pts, colour, thick, style.edge_rgb, closed=False)
            for p in pts.reshape(-1, 2):
                cv2.circle(rgb, (int(p[0]), int(p[1])), thick + 2, style.edge_rgb, -1, cv2.LINE_AA)
                cv2.circle(rgb, (int(p[0]), int(p[1])), thick + 1, colour, -1, cv2.LINE_AA)


def _nearest_on_box(box: Box, point: tuple[float, float]) -> tuple[int, int]:
    return int(np.clip(point[0], box[0], box[2])), int(np.clip(point[1], box[1], box[3]))


def _draw_labels(rgb: np.ndarray, result: FrameResult, style: OverlayStyle, language: str) -> np.ndarray:
    height, width = rgb.shape[:2]
    font_px = _font_px(rgb.shape, style)
    painter = _LabelPainter(rgb, font_px, style)
    gap = max(3.0, font_px / 3)
    spacing_known = result.pixel_spacing_mm is not None
    occupied: list[Box] = []
    if not spacing_known and result.lesions:
        banner = [text("no_spacing_banner", language)]
        bw, bh = painter.box_size(banner)
        box = _clamp_box((gap, gap, gap + bw, gap + bh), width, height)
        painter.paint(box, banner, [style.warning_rgb])
        occupied.append(box)
    lesion_boxes = [tuple(lesion.bbox_px) for lesion in result.lesions]
    leaders: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for number, (lesion, target) in enumerate(zip(result.lesions, lesion_boxes), start=1):
        lines = lesion_label_lines(lesion, number, spacing_known, language)
        colours = [style.lesion_rgb, (255, 255, 255), (255, 255, 255)]
        others = [b for b in lesion_boxes if b is not target]
        box = place_label(painter.box_size(lines), target, occupied + others, (width, height), gap)
        painter.paint(box, lines, colours)
        occupied.append(box)
        outline = lesion_outline_px(lesion)
        box_centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        nearest = outline[np.argmin(np.hypot(outline[:, 0] - box_centre[0], outline[:, 1] - box_centre[1]))]
        start = _nearest_on_box(box, (float(nearest[0]), float(nearest[1])))
        if math.dist(start, nearest) > gap * 1.5:
            leaders.append((start, (int(nearest[0]), int(nearest[1]))))
    out = painter.result()
    for a, b in leaders:
        cv2.line(out, a, b, style.edge_rgb, 3, cv2.LINE_AA)
        cv2.line(out, a, b, style.lesion_rgb, 1, cv2.LINE_AA)
    return out


def heatmap_panel(
    image_grey_rgb: np.ndarray, heatmap: np.ndarray, result: FrameResult, style: OverlayStyle, language: str
) -> np.ndarray:
    """Grey image with a jet-coloured heatmap blended in (weight grows with the heat), lesion
    outlines on top and a title. ``heatmap`` in [0, 1]; resized to the image if needed.

    Zero heat has blend weight 0, which leaves the grey pixel as it is, so the blend runs only
    on the box of the non-zero heat (a Grad-CAM map is zero outside its lesion crops)."""
    height, width = image_grey_rgb.shape[:2]
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f"heatmap must be 2-D, got shape {heat.shape}")
    if heat.shape != (height, width):
        heat = cv2.resize(heat, (width, height), interpolation=cv2.INTER_LINEAR)
    panel = np.array(image_grey_rgb, dtype=np.uint8, order="C")
    rows = np.flatnonzero(heat.any(axis=1))  # NaN counts as non-zero here, as 0 below
    if rows.size:
        cols = np.flatnonzero(heat.any(axis=0))
        win = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        h = np.clip(np.nan_to_num(heat[win]), 0.0, 1.0)
        colour = cv2.cvtColor(cv2.applyColorMap((h * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
        weight = (style.heatmap_max_alpha * np.sqrt(h)).astype(np.float32)
        panel[win] = cv2.blendLinear(colour, np.ascontiguousarray(panel[win]), weight, 1.0 - weight)
    _draw_geometry(panel, result, style, with_axes=False, with_regions=False)
    painter = _LabelPainter(panel, _font_px(panel.shape, style), style)
    title = [text("heatmap_panel", language)]
    tw, th = painter.box_size(title)
    gap = max(3.0, painter.font_px / 3)
    painter.paint(_clamp_box((gap, gap, gap + tw, gap + th), width, height), title, [(255, 255, 255)])
    return painter.result()


def draw_overlay(
    image_grey: np.ndarray,
    result: FrameResult,
    heatmap: np.ndarray | None = None,
    language: str = "zh",
    style: OverlayStyle | None = None,
) -> np.ndarray:
    """RGB ``uint8`` overlay of ``result`` on the original grey frame.

    Draws the fan (thin blue), liver (thin green), each lesion's outline (yellow), long axis
    (cyan) and short axis (magenta), and a label per lesion: number, detection score,
    malignancy ("未评估"/"—" when not assessed) and long × short axis in mm, or in px with a
    "no pixel spacing" banner. With ``heatmap`` (original pixels, values in [0, 1]) the result
    is two panels side by side: overlay | heatmap.
    """
    style = style or OverlayStyle()
    rgb = _to_rgb(image_grey)
    width, height = result.image_size_px
    if rgb.shape[:2] != (height, width):
        raise ValueError(
            f"image is {rgb.shape[1]}x{rgb.shape[0]} px but the result is for {width}x{height} px"
        )
    grey_rgb = rgb.copy()
    _draw_geometry(rgb, result, style, with_axes=True)
    panel = _draw_labels(rgb, result, style, language)
    if heatmap is None:
        return panel
    heat = heatmap_panel(grey_rgb, heatmap, result, style, language)
    gap = np.full((height, style.panel_gap_px, 3), 32, np.uint8)
    return np.concatenate([panel, gap, heat], axis=1)


def _overlay_png_params() -> list[int]:
    """PNG settings of the overlays (lossless whatever they are; issue 17): zlib level 1 with
    the default deflate strategy and the "sub" row filter. On AUL overlays (2000x768 px, an
    overlay|Grad-CAM pair) OpenCV's default (level 1, RLE strategy) encodes as fast but writes
    ~30 % larger files that also decode ~3 ms slower (the HTML report reads them back for its
    thumbnail; the PDF embeds them as they are). An OpenCV without the filter setting keeps
    libpng's own filter choice."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_DEFAULT]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]
    return params


def write_overlay_png(path: Path, overlay_rgb: np.ndarray) -> Path:
    """Write an RGB overlay to ``path`` (PNG, lossless: ``_overlay_png_params``); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(overlay_rgb, cv2.COLOR_RGB2BGR), _overlay_png_params()):
        raise OSError(f"{path}: cannot write overlay")
    return path
