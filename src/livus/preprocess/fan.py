"""Fan (imaged sector) detection: the region of the frame that carries echo data.

Everything outside the fan is background (black, or annotations). The detector works on a
downsampled copy for speed and returns the fan as a polygon and a mask in ORIGINAL pixels.

Method (hand-written because no library detects ultrasound sectors):

1. echo support: a lightly smoothed copy above a low grey floor, opened to drop thin bright
   annotations, largest component(s); bright thin marks (ruler bars, ticks, text touching the
   fan) are left out of the edge and arc fits;
2. flat scanner rim: some scanners draw the fan's black level as a constant grey and pad the
   sector with a few pixels of it, which annotated outlines exclude. The rim is the texture-free
   grey found next to the black background (speckle always varies); where it exists, the
   "textured" echo (brighter than the rim level) is what the fan is measured against;
3. sector model: the left/right edges are RANSAC "envelope" lines fitted to the support's row
   extremes over 5–70 % of its depth. A curved/phased sector is symmetric about a vertical axis:
   when the two edges disagree by more than a few degrees and one of them is not a long straight
   edge (a dark side, whose extremes lie inside the true edge), one envelope is fitted to the
   right extremes and the mirrored left ones. The apex is where the edges meet, near/far arcs
   are circles around it through the support's extreme radii; the rim's width (where texture
   reaches the border) is then cut from the sides and arcs, and a flat bottom cut (many beams
   ending bright on one row) clips the sector. The model extends the fan into dark corners and
   shadowed regions that carry no echo;
4. linear probes (near-vertical edges): a rectangle whose sides are the outermost columns that a
   good share of the rows end on (a shadowed deep side needs only a few rows);
5. fallback: the convex hull of the support cut above the first echo row of each column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np

from livus.preprocess.intensity import uint8_percentile
from livus.shapes import polygon_mask


@dataclass
class FanParams:
    """Tuning of :func:`detect_fan` (grey levels 0–255, sizes in original pixels unless noted)."""

    work_width_px: int = 512  # detection runs on a copy this wide
    floor_grey: float = 6.0  # smoothed grey above background + this counts as echo
    overlay_grey: int = 150  # bright thin marks at least this grey are not echo (255 = off)
    overlay_tophat: int = 60  # ... and at least this much brighter than their surroundings
    max_marks_share: float = 0.03  # more "marks" than this share of the echo: speckle, not marks
    min_local_std: float = 1.0  # flat rim: local grey std below this (0 = off)
    std_window_px: int = 3  # window of that std (original pixels)
    flat_max_grey: float = 130.0  # flat rim is darker than this
    flat_min_share: float = 0.3  # a work pixel is rim when this share of its pixels is
    min_rim_px: int = 500  # fewer flat pixels next to the background: no rim
    rim_grey_tol: float = 2.0  # rim pixels are within this of the rim's grey level
    rim_margin_grey: float = 6.0  # texture is brighter than the rim level by this
    rim_percentile: float = 15.0  # rim width: this low percentile of the texture's inset
    min_straight_share: float = 0.3  # linear probe: this share of rows touch a straight vertical side
    min_weak_side_share: float = 0.05  # ... and this share the other side (its deep part may be shadowed)
    max_far_rim_px: float = 10.0  # the far arc's flat band (rim, or dark far field drawn at the rim level)
    max_rim_px: float = 10.0  # rim widths are capped at this (work pixels at 512 wide)
    open_px: float = 5.0
    min_piece_share: float = 0.1  # echo regions at least this share of the largest one join it  # opening (work pixels) removes structures thinner than this (text, lines)
    max_side_angle_gap_deg: float = 5.0  # sides more asymmetric than this: fit one mirrored edge ...
    min_edge_share: float = 0.5  # ... unless both edges touch at least this share of their rows
    min_flat_bottom_share: float = 0.12  # a flat bottom cut spans at least this share of the columns
    min_cut_grey: float = 30.0  # ... and the echo just above it is at least this bright
    far_bin_percentile: float = 100.0  # far arc: this percentile over beams of the deepest echo (100: 99.9th pixel percentile)
    side_rows_frac: tuple[float, float] = (0.05, 0.7)  # rows (share of the fan height) used for the edges
    min_sector_cover: float = 0.97  # the sector model must hold this share of the echo pixels
    polygon_epsilon_px: float = 0.7  # polygon simplification tolerance (work pixels)


@dataclass
class FanResult:
    """A detected fan: polygon and mask in original pixels."""

    polygon_px: list[list[float]]
    mask: np.ndarray  # uint8 0/1, original size
    box_xyxy: tuple[float, float, float, float]
    area_fraction: float
    warnings: list[str] = field(default_factory=list)
    kind: str = "unknown"  # sector | rectangle | hull | image


def _disk(diameter_px: float) -> np.ndarray:
    d = max(1, int(round(diameter_px)))
    if d % 2 == 0:
        d += 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return np.zeros_like(mask)
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (labels == k).astype(np.uint8)


def flat_rim(grey: np.ndarray, params: FanParams) -> tuple[np.ndarray, float] | None:
    """Pixels (bool, same size as ``grey``) and grey level of the flat grey rim some scanners
    draw around the sector, or ``None`` when there is none.

    Such scanners show the fan's black level as a constant grey (~25–35) and pad the sector with
    a rim of it; the annotated outlines exclude the rim. Speckle varies from pixel to pixel, the
    rim does not: the rim is the texture-free grey of the level found next to the black
    background. Computed on the original pixels, where the rim is several pixels wide.
    """
    g = grey.astype(np.float32)
    k = (params.std_window_px, params.std_window_px)
    mean = cv2.boxFilter(g, -1, k)
    var = cv2.boxFilter(g * g, -1, k) - mean * mean
    background = uint8_percentile(grey[::4, ::4], 1)
    flat = (var < params.min_local_std**2) & (g > background + params.floor_grey) & (g < params.flat_max_grey)
    near_bg = cv2.dilate((g <= background + 2).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    edge = flat & near_bg
    if edge.sum() < params.min_rim_px:
        return None
    level = float(np.median(g[edge]))
    return flat & (np.abs(g - level) <= params.rim_grey_tol), level


def bright_marks(grey_small: np.ndarray, params: FanParams) -> np.ndarray | None:
    """Bright thin marks (0/1; ruler bars, ticks, text) that may touch the fan and would bend
    its fitted edges, or ``None`` when switched off."""
    if params.overlay_grey >= 255:
        return None
    tophat = cv2.morphologyEx(grey_small, cv2.MORPH_TOPHAT, np.ones((7, 7), np.uint8))
    marks = ((grey_small >= params.overlay_grey) & (tophat >= params.overlay_tophat)).astype(np.uint8)
    # marks are sparse; where "marks" cover much of the echo it is coarse bright speckle
    if marks.sum() > params.max_marks_share * max(1, int((grey_small > params.floor_grey).sum())):
        return None
    return cv2.dilate(marks, np.ones((3, 3), np.uint8))


def echo_support(grey_small: np.ndarray, params: FanParams) -> np.ndarray:
    """Pixels (0/1) of the largest connected region carrying echo (above the black background)."""
    blur = cv2.GaussianBlur(grey_small, (0, 0), 1.0)
    background = uint8_percentile(blur, 1)
    raw = (blur > background + params.floor_grey).astype(np.uint8)
    opened = cv2.morphologyEx(raw, cv2.MORPH_OPEN, _disk(params.open_px))
    # the largest region plus big pieces split off by dark bands (near-field gaps, shadows)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if n <= 1:
        return np.zeros_like(opened)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= params.min_piece_share * areas.max()
    return keep[labels].astype(np.uint8)


def _hull_mask(support: np.ndarray) -> np.ndarray:
    """Convex hull of the support, cut above the support's first row in each column (the concave
    near-field arc of a curved probe)."""
    hull = cv2.convexHull(cv2.findNonZero(support))
    m = np.zeros_like(support)
    cv2.fillConvexPoly(m, hull, 1)
    has = support.any(0)
    ytop = np.where(has, support.argmax(0), support.shape[0])
    m[np.arange(support.shape[0])[:, None] < ytop[None, :]] = 0
    return m


def _envelope_counts(a: np.ndarray, b: np.ndarray, ys: np.ndarray, xs: np.ndarray, outward: float, tol: float,
                     block_values: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate line ``x = a*y + b``: how many points lie outside it by more than
    ``tol`` and how many within ``tol`` of it (residual ``(x - (a*y + b)) * outward``).
    Candidates are scored in blocks of about ``block_values`` residuals in one reused buffer."""
    m, n = len(a), len(ys)
    outside = np.empty(m, np.intp)
    within = np.empty(m, np.intp)
    step = max(1, block_values // max(n, 1))
    buf = np.empty((min(step, m), n))
    for s in range(0, m, step):
        e = min(s + step, m)
        r = buf[: e - s]
        np.multiply.outer(a[s:e], ys, out=r)
        r += b[s:e, None]
        np.subtract(xs[None, :], r, out=r)
        r *= outward
        outside[s:e] = np.count_nonzero(r > tol, axis=1)
        within[s:e] = np.count_nonzero(np.abs(r, out=r) <= tol, axis=1)
    return outside, within


def _envelope_line(ys: np.ndarray, xs: np.ndarray, outward: float, tol: float, rng: np.random.Generator,
                   n_pairs: int = 3000) -> tuple[np.ndarray, int] | None:
    """RANSAC line ``x = a*y + b`` through boundary points that the other points do not cross
    (``outward`` = -1 for the left edge, +1 for the right); returns (point, down direction) and
    the number of points on it. ``n_pairs`` candidate point pairs are scored at once (vectorised):
    a dense search keeps the chosen edge stable across random seeds."""
    n = len(ys)
    if n < 10:
        return None
    # all candidate lines at once: pairs of distinct points at least 5 rows apart
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n
    dy = ys[j] - ys[i]
    ok = np.abs(dy) >= 5
    i, j, dy = i[ok], j[ok], dy[ok]
    if len(i) == 0:
        return None
    a_all = (xs[j] - xs[i]) / dy
    b_all = xs[i] - a_all * ys[i]
    # residuals of every point to every candidate (> 0: outside), a block of candidates at a time
    # in one buffer that stays in the cache (in place: the same float operations in the same order)
    outside, within = _envelope_counts(a_all, b_all, ys, xs, outward, tol)
    valid = outside / n <= 0.03
    if not valid.any():
        return None
    scores = np.where(valid, within, -1)
    k = int(np.argmax(scores))
    best, best_score = (a_all[k], b_all[k]), int(scores[k])
    if best is None:
        return None
    a, b = best
    inl = np.abs(xs - (a * ys + b)) <= tol
    a, b = np.polyfit(ys[inl], xs[inl], 1)
    u = np.array([a, 1.0]) / np.hypot(a, 1.0)
    y0 = float(np.median(ys[inl]))
    return np.array([[a * y0 + b, y0], u]), best_score


def _row_extremes(support: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Rows ``ys`` between fractions ``lo``/``hi`` of the support's height and the support's
    leftmost/rightmost column in each (``nan`` where the extreme touches the image border, which
    is a crop, not a fan edge)."""
    rows = np.nonzero(support.any(1))[0]
    if len(rows) < 20:
        return None
    y_top, y_bot = rows[0], rows[-1]
    band = rows[(rows >= y_top + lo * (y_bot - y_top)) & (rows <= y_top + hi * (y_bot - y_top))]
    sub = support[band]
    w = support.shape[1]
    x_left = sub.argmax(1).astype(np.float64)
    x_right = (w - 1 - sub[:, ::-1].argmax(1)).astype(np.float64)
    x_left[x_left <= 0] = np.nan
    x_right[x_right >= w - 1] = np.nan
    return band.astype(np.float64), x_left, x_right


def _fit_side(ys: np.ndarray, xs: np.ndarray, outward: float, rng: np.random.Generator) -> tuple[np.ndarray, int] | None:
    ok = np.isfinite(xs)
    return _envelope_line(ys[ok], xs[ok], outward, 1.5, rng)


def _fan_axis(support: np.ndarray, lo: float = 0.02, hi: float = 0.1) -> float | None:
    """Column of the fan's symmetry axis: the median middle of the support's row extents just
    below its top (the near field nearly always reaches both edges; the very first rows can
    carry a marker attached to the fan)."""
    ext = _row_extremes(support, lo, hi)
    if ext is None:
        return None
    _, x_left, x_right = ext
    mid = 0.5 * (x_left + x_right)
    mid = mid[np.isfinite(mid)]
    return float(np.median(mid)) if len(mid) >= 3 else None


def _mirror(line: np.ndarray, axis_x: float) -> np.ndarray:
    return np.array([[2 * axis_x - line[0][0], line[0][1]], [-line[1][0], line[1][1]]])


def _side_lines(support: np.ndarray, params: FanParams, marks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Left and right fan edges as ``[point, unit direction pointing down]``.

    Each edge is an envelope line fitted to the support's row extremes in the upper part of the
    fan (the near field reaches the edges; the far field is often dark at the sides). A curved or
    phased probe's sector is symmetric about a vertical axis: when the two edges disagree (one
    side is dark, so its extremes lie inside the true edge) and one of them is not a long straight
    edge, both sides' points are mirrored onto one side about the axis and a single envelope is
    fitted to them. ``None`` when no straight
    edge is found.
    """
    if marks is not None:
        support = cv2.morphologyEx(support & (marks == 0), cv2.MORPH_OPEN, _disk(params.open_px))
    ext = _row_extremes(support, params.side_rows_frac[0], params.side_rows_frac[1])
    if ext is None:
        return None
    ys, x_left, x_right = ext
    rng = np.random.default_rng(0)
    left = _fit_side(ys, x_left, -1.0, rng)
    right = _fit_side(ys, x_right, 1.0, rng)
    axis_x = _fan_axis(support)
    if left is not None and right is not None:
        l, r = left[0], right[0]
        ang_l = np.degrees(np.arctan2(-l[1][0], l[1][1]))
        ang_r = np.degrees(np.arctan2(r[1][0], r[1][1]))
        share_l = left[1] / max(1, int(np.isfinite(x_left).sum()))
        share_r = right[1] / max(1, int(np.isfinite(x_right).sum()))
        both_straight = min(share_l, share_r) >= params.min_edge_share
        if abs(ang_l - ang_r) <= params.max_side_angle_gap_deg or both_straight or axis_x is None:
            return l, r
    if axis_x is None:
        return None
    # symmetric fit: the right extremes and the mirrored left extremes share one envelope
    ys2 = np.concatenate([ys, ys])
    xs2 = np.concatenate([x_right, 2 * axis_x - x_left])
    right_sym = _fit_side(ys2, xs2, 1.0, rng)
    if right_sym is None:
        return None
    return _mirror(right_sym[0], axis_x), right_sym[0]


def _intersect(l1: np.ndarray, l2: np.ndarray) -> np.ndarray | None:
    (p, u), (q, v) = l1, l2
    den = u[0] * v[1] - u[1] * v[0]
    if abs(den) < 1e-6:
        return None
    t = ((q[0] - p[0]) * v[1] - (q[1] - p[1]) * v[0]) / den
    return p + t * u


def _rim_widths(textured: np.ndarray, apex: np.ndarray, a_l: float, a_r: float, r0: float, r1: float,
                params: FanParams) -> tuple[float, float, float]:
    """Widths (work pixels) of the flat rim at the sides, the far arc and the near arc: how far
    inside the fitted sector the textured echo begins where it reaches the border (a low
    percentile over the border, since dark tissue elsewhere starts deeper inside)."""
    ys, xs = np.nonzero(textured)
    if len(xs) < 100:
        return 0.0, 0.0, 0.0
    dx, dy = xs - apex[0], ys - apex[1]
    r = np.hypot(dx, dy)
    th = np.arctan2(dx, dy)
    q = params.rim_percentile
    nb = 48
    th_bin = np.clip(((th - a_l) / (a_r - a_l) * nb).astype(int), 0, nb - 1)
    r_max = np.full(nb, -np.inf)
    r_min = np.full(nb, np.inf)
    np.maximum.at(r_max, th_bin, r)
    np.minimum.at(r_min, th_bin, r)
    inner = slice(nb // 8, nb - nb // 8)  # corners are rounded by the opening
    far = r1 - np.percentile(r_max[inner][np.isfinite(r_max[inner])], 100 - q)
    near = np.percentile(r_min[inner][np.isfinite(r_min[inner])], q) - r0
    rb = np.clip(((r - r0) / (r1 - r0) * nb).astype(int), 0, nb - 1)
    t_min = np.full(nb, np.inf)
    t_max = np.full(nb, -np.inf)
    np.minimum.at(t_min, rb, th)
    np.maximum.at(t_max, rb, th)
    rr = r0 + (np.arange(nb) + 0.5) * (r1 - r0) / nb
    sel = slice(nb // 10, nb // 2)  # the upper half of the sides, away from the corners
    side = []
    for d in ((t_min - a_l) * rr, (a_r - t_max) * rr):
        v = d[sel][np.isfinite(d[sel])]
        if len(v):
            side.append(float(np.percentile(v, q)))
    width = min(side) if side else 0.0
    scale = params.work_width_px / 512
    cap, cap_far = params.max_rim_px * scale, params.max_far_rim_px * scale
    return float(np.clip(width, 0.0, cap)), float(np.clip(far, 0.0, cap_far)), float(np.clip(near, 0.0, cap))


def _halfplane(shape: tuple[int, int], point: np.ndarray, direction: np.ndarray, inward: np.ndarray) -> np.ndarray:
    """0/1 mask of the side of the line (``point``, ``direction``) that ``inward`` points to."""
    big = 4.0 * (shape[0] + shape[1])
    p0, p1 = point - big * direction, point + big * direction
    poly = np.array([p0, p1, p1 + big * inward, p0 + big * inward])
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return m


def _arc_radii(support: np.ndarray, apex: np.ndarray, a_l: float, a_r: float, params: FanParams) -> tuple[float, float]:
    """Near and far arc radii (work pixels) around the apex: the near arc is the support's
    smallest radius (robust percentile); the far arc is a high percentile over beam-angle bins of
    each bin's deepest support pixel, so a marker icon touching the fan in a few beams does not
    push it out, while a far field that is dark in most beams still reaches the deepest echo."""
    ys, xs = np.nonzero(support)
    r = np.hypot(xs - apex[0], ys - apex[1])
    if params.far_bin_percentile < 100:  # the beam-angle bins (only then: 100 is the pixel percentile)
        th = np.arctan2(xs - apex[0], ys - apex[1])
        nb = 48
        b = ((th - a_l) / (a_r - a_l) * nb).astype(int)
        ok = (b >= 0) & (b < nb)
        r_max = np.full(nb, np.nan)
        if ok.any():
            tmp = np.full(nb, -np.inf)
            np.maximum.at(tmp, b[ok], r[ok])
            r_max = np.where(np.isfinite(tmp), tmp, np.nan)
        if np.isfinite(r_max).sum() >= nb // 4:
            return float(np.percentile(r, 0.2)), float(np.nanpercentile(r_max, params.far_bin_percentile))
    r0, r1 = np.percentile(r, [0.2, 99.9])  # one partition for both
    return float(r0), float(r1)


def _sector_mask(support: np.ndarray, params: FanParams, textured: np.ndarray | None = None,
                 marks: np.ndarray | None = None, grey_small: np.ndarray | None = None) -> np.ndarray | None:
    """Sector model fitted to the support: apex where the side edges meet, near/far arcs around
    the apex. Extends the fan into dark corners and shadowed sides that carry no echo. With
    ``textured`` (the support less a flat scanner rim), the sector is shrunk by the rim."""
    lines = _side_lines(support, params, marks)
    if lines is None:
        return None
    left, right = lines
    ang_l = np.degrees(np.arctan2(-left[1][0], left[1][1]))  # > 0: left edge leans left
    ang_r = np.degrees(np.arctan2(right[1][0], right[1][1]))
    if min(ang_l, ang_r) < 2.0:  # not a converging sector (linear probe): the hull is the fan
        return None
    top_row = int(np.argmax(support.any(1)))  # the support's first row (it is not empty here)
    apex = _intersect(left, right)
    if apex is None or apex[1] > top_row + 2:
        return None
    a_l = np.arctan2(left[1][0], left[1][1])
    a_r = np.arctan2(right[1][0], right[1][1])
    r0, r1 = _arc_radii(support if marks is None else support & (marks == 0), apex, a_l, a_r, params)
    w_side = 0.0
    if textured is not None:
        w_side, w_far, w_near = _rim_widths(textured, apex, a_l, a_r, r0, r1, params)
        r1 -= w_far
        r0 += w_near
    a = np.linspace(a_l, a_r, 96)
    outer = np.stack([apex[0] + r1 * np.sin(a), apex[1] + r1 * np.cos(a)], 1)
    inner = np.stack([apex[0] + r0 * np.sin(a[::-1]), apex[1] + r0 * np.cos(a[::-1])], 1)
    poly = np.concatenate([outer, inner])
    m = np.zeros_like(support)
    cv2.fillPoly(m, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    if w_side > 0:
        for line, sign in ((left, 1.0), (right, -1.0)):
            u = line[1]
            normal = np.array([u[1], -u[0]]) * sign  # points into the fan
            m &= _halfplane(m.shape, line[0] + w_side * normal, u, normal)
    # the model must hold the echo (with a rim: the textured echo, as the rim's outline is ragged)
    echo = textured if textured is not None and textured.any() else support
    # some scanners cut the sector at the bottom of their image area (a flat bottom edge, where a
    # wide run of beams ends on the same row): no fan below it
    cols = np.nonzero(echo.any(0))[0]
    bottom = echo.shape[0] - 1 - echo[:, cols][::-1].argmax(0)
    y_cut = int(bottom.max())
    on_cut = bottom >= y_cut - 2
    if np.mean(on_cut) >= params.min_flat_bottom_share:
        # a cut shows echo right up to it; a far field fading into the dark does not
        strong = True
        if grey_small is not None:
            above = grey_small[max(0, y_cut - 4) : y_cut - 1, cols[on_cut]]
            strong = above.size > 0 and float(np.median(above)) >= params.min_cut_grey
        if strong:
            m[y_cut + 1 :] = 0
    if m[echo > 0].mean() < params.min_sector_cover:
        return None
    return m


def _box_extents(support: np.ndarray, q: float) -> tuple[float, float, float, float] | None:
    """Outer extents ``(x0, y0, x1, y1)`` of a support (work pixels): the ``q`` percentile of its
    row/column extremes on each side (robust to a few stray pixels), or ``None`` if empty."""
    rows = np.nonzero(support.any(1))[0]
    cols = np.nonzero(support.any(0))[0]
    if len(rows) < 10 or len(cols) < 10:
        return None
    sub = support[rows]
    x_left = sub.argmax(1)
    x_right = support.shape[1] - 1 - sub[:, ::-1].argmax(1)
    subc = support[:, cols]
    y_top = subc.argmax(0)
    y_bot = support.shape[0] - 1 - subc[::-1].argmax(0)
    return (float(np.percentile(x_left, q)), float(np.percentile(y_top, q)),
            float(np.percentile(x_right, 100 - q)), float(np.percentile(y_bot, 100 - q)))


def _straight_edge(xs: np.ndarray, outward: float, min_share: float, tol: float = 2.0) -> float | None:
    """The outermost column that at least ``min_share`` of the rows' extremes ``xs`` lie on
    (within ``tol``): a straight vertical edge. Rows sticking out (ruler ticks, markers) are
    few, so they do not count. ``None`` when no column is shared by that many rows."""
    v = xs[np.isfinite(xs)]
    if len(v) == 0:
        return None
    cand = np.unique(np.round(v))
    counts = np.array([(np.abs(v - c) <= tol).sum() for c in cand])
    ok = cand[counts >= min_share * len(v)]
    if len(ok) == 0:
        return None
    return float(ok.max() if outward > 0 else ok.min())


def _rectangle_mask(support: np.ndarray, params: FanParams, textured: np.ndarray | None = None) -> np.ndarray | None:
    """Rectangle of a linear probe: straight vertical sides, flat top and bottom. ``None`` when
    the support is not box-like (its sides are not straight vertical edges over a good share of
    the rows). With ``textured`` (the support less a flat scanner rim, whose outline is ragged)
    the box is fitted to the texture."""
    base = textured if textured is not None and textured.any() else support
    box = _box_extents(base, 2.0)
    ext = _row_extremes(base, 0.05, 0.95)
    if box is None or ext is None:
        return None
    _, y0, _, y1 = box
    _, x_left, x_right = ext
    x0 = _straight_edge(x_left, -1.0, params.min_straight_share)
    x1 = _straight_edge(x_right, 1.0, params.min_weak_side_share)
    x0b = _straight_edge(x_left, -1.0, params.min_weak_side_share)
    x1b = _straight_edge(x_right, 1.0, params.min_straight_share)
    if x0 is None or x1 is None:  # one side must be a long straight edge, the other a shorter one
        x0, x1 = x0b, x1b
    if x0 is None or x1 is None:
        return None
    m = np.zeros_like(support)
    m[int(round(y0)) : int(round(y1)) + 1, int(round(x0)) : int(round(x1)) + 1] = 1
    if m[base > 0].mean() < params.min_sector_cover:
        return None
    return m


def fan_mask_small(grey_small: np.ndarray, params: FanParams, rim_small: np.ndarray | None = None,
                   rim_level: float | None = None) -> tuple[np.ndarray, str]:
    """Fan mask (0/1) of a downsampled grey image and how it was found (sector | rectangle | hull
    | none). ``rim_small``: flat scanner rim (0/1, same size) to exclude, or ``None``;
    ``rim_level``: its grey level (texture is brighter than it)."""
    support = echo_support(grey_small, params)
    if not support.any():
        return support, "none"
    textured = None
    if rim_small is not None:
        textured = support & (cv2.dilate(rim_small, np.ones((3, 3), np.uint8)) == 0)
        if rim_level is not None:
            textured &= (grey_small > rim_level + params.rim_margin_grey).astype(np.uint8)
        # the thin step between the rim and the black background is not flat: open it away
        textured = cv2.morphologyEx(textured, cv2.MORPH_OPEN, _disk(params.open_px))
    sector = _sector_mask(support, params, textured, bright_marks(grey_small, params), grey_small)
    if sector is not None:
        return sector, "sector"
    marks = bright_marks(grey_small, params)
    clean = support if marks is None else cv2.morphologyEx(support & (marks == 0), cv2.MORPH_OPEN, _disk(params.open_px))
    rect = _rectangle_mask(clean, params, textured)
    if rect is not None:
        return rect, "rectangle"
    return _hull_mask(support), "hull"


def detect_fan(grey: np.ndarray, params: FanParams | None = None) -> FanResult:
    """Detect the fan of a grey ``uint8`` frame; polygon and mask in original pixels."""
    params = params or FanParams()
    if grey.ndim != 2:
        raise ValueError("detect_fan expects a 2-D grey image")
    h, w = grey.shape
    k = min(1.0, params.work_width_px / w)
    small = cv2.resize(grey, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA) if k < 1 else grey
    kx, ky = small.shape[1] / w, small.shape[0] / h
    rim_small = None
    found = flat_rim(grey, params) if params.min_local_std > 0 else None
    rim, rim_level = found if found is not None else (None, None)
    if rim is not None:
        rim_f = rim.astype(np.float32)
        if rim_f.shape != small.shape:
            rim_f = cv2.resize(rim_f, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
        rim_small = (rim_f >= params.flat_min_share).astype(np.uint8)
    m_small, kind = fan_mask_small(small, params, rim_small, rim_level)
    warnings: list[str] = []
    if not m_small.any():
        warnings.append("no fan found: using the whole image")
        poly = [[0.0, 0.0], [w - 1.0, 0.0], [w - 1.0, h - 1.0], [0.0, h - 1.0]]
        kind = "image"
    else:
        contours, _ = cv2.findContours(m_small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        c = max(contours, key=cv2.contourArea)
        c = cv2.approxPolyDP(c, params.polygon_epsilon_px, True).reshape(-1, 2).astype(np.float64)
        # small-pixel centres → original-pixel centres (half-pixel convention)
        poly_arr = np.empty_like(c)
        poly_arr[:, 0] = np.clip((c[:, 0] + 0.5) / kx - 0.5, 0, w - 1)
        poly_arr[:, 1] = np.clip((c[:, 1] + 0.5) / ky - 0.5, 0, h - 1)
        poly = poly_arr.tolist()
    fan = fan_result_from_polygon(poly, w, h, warnings)
    fan.kind = kind
    return fan


def fan_result_from_polygon(
    polygon_px: list[list[float]], width: int, height: int, warnings: list[str] | None = None
) -> FanResult:
    """Build a :class:`FanResult` (mask, box, area share) from a polygon in original pixels."""
    mask = polygon_mask(polygon_px, width, height)
    arr = np.asarray(polygon_px, dtype=np.float64)
    box = (float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 0].max()), float(arr[:, 1].max()))
    return FanResult(
        polygon_px=[[float(x), float(y)] for x, y in arr],
        mask=mask,
        box_xyxy=box,
        area_fraction=float(mask.mean()),
        warnings=list(warnings or []),
    )


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two 0/1 masks (1.0 when both are empty)."""
    a, b = a > 0, b > 0
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


class FanCache:
    """Reuses the fan of a clip/device while the frame size stays the same.

    Key: ``(device or clip key, width, height)``. A new size or key detects the fan again.
    """

    def __init__(self, params: FanParams | None = None) -> None:
        self.params = params or FanParams()
        self._store: dict[tuple[str, int, int], FanResult] = {}
        self._aux: dict[tuple[str, str, int, int], Any] = {}
        self.hits = 0
        self.misses = 0

    def get(self, grey: np.ndarray, key: str = "") -> FanResult:
        h, w = grey.shape[:2]
        k = (key, w, h)
        fan = self._store.get(k)
        if fan is None:
            self.misses += 1
            fan = detect_fan(grey, self.params)
            self._store[k] = fan
        else:
            self.hits += 1
        return fan

    def aux(self, name: str, grey: np.ndarray, key: str, compute: Callable[[], Any]) -> Any:
        """Cache any other per-device result (ruler, model-space fan mask) next to the fan."""
        h, w = grey.shape[:2]
        k = (name, key, w, h)
        if k not in self._aux:
            self._aux[k] = compute()
        return self._aux[k]

    def clear(self) -> None:
        self._store.clear()
        self._aux.clear()
