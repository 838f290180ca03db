"""Input quality gate: is this frame a usable B-mode liver image?

:func:`assess_quality` gives one :class:`QualityVerdict` per frame, from cheap statistics on a
small working copy (``work_width_px`` wide; about a millisecond or two when the fan is given):

==================== =================================================================
verdict              rule (thresholds in :class:`QualityParams`)
==================== =================================================================
``blank``            hardly any grey spread in the whole frame (black, white or one grey)
``not_ultrasound``   no speckle: large flat (texture-free) share inside the echo region
                     (photos, screenshots), uncorrelated pixel noise (no speckle grain),
                     colour spread over the frame rather than inside the fan, no fan, or a
                     frame-filling image too smooth for speckle (grey photos)
``frozen``           the fan content equals the previous frame's (frozen scanner screen)
``doppler_colour``   colour pixels inside the fan (a colour/power-Doppler box)
``heavily_shadowed`` a large share of the fan's beams are dark below the near field
``liver_not_in_view`` the upper/middle fan is much darker than the near field with large dark
                     parts, or strongly banded (no liver parenchyma below the wall)
``ok``               none of the above
==================== =================================================================

Checks run in that order and the first that fires gives the verdict, so a black frame is
``blank`` (not also ``frozen``), a photo is ``not_ultrasound`` (not ``doppler_colour``).

For clips use :class:`ClipQualityGate` (one per clip): it keeps the previous frame and the fan,
and judges "liver not in view" also against the clip's own reference, which catches far more
frames of a probe sliding off the liver than the absolute per-frame rule.

Usage: ``v = assess_quality(frame, fan_mask, previous)``; ``FrameResult.quality = v.to_dict()``
(``{"verdict", "ok", "reason", "reason_zh", "measures"}``).

Statistics (all inside the fan unless said; grey levels 0–255 on the working copy):

* ``grey_std``: grey standard deviation of the whole frame; ``grey_p99``: its 99th percentile;
* ``fan_share``: fan area / frame area (``livus.preprocess.fan.detect_fan`` when no mask given);
* ``flat_share``: share of lit pixels (smoothed grey > ``flat_grey``) whose 3×3 local standard
  deviation is below ``flat_std_grey``. Speckle makes every echo pixel differ from its
  neighbours; photos and screenshots have large smooth or uniform regions (dark flat padding
  that some scanners draw inside the sector outline is left out by ``flat_grey``);
* ``speckle_corr``: correlation of horizontally adjacent pixels at full resolution. Speckle
  grains span several pixels (the beam's point spread), so neighbours correlate (> 0.5);
  pixel noise does not (≈ 0);
* ``speckle_snr``: median local mean / standard deviation (7×7) in the fan. Only used when the
  "fan" covers more than 95% of the frame (no scanner background around an imaged region):
  above 14 the texture is too smooth for speckle (a grey photo);
* ``colour_share_fan`` / ``colour_share_outside``: share of colour pixels (``Frame.color_mask``)
  inside / outside the fan. Doppler colour sits inside part of the fan (at most
  ``max_colour_share_fan`` of it); a photo's colour is everywhere;
* ``frame_diff_grey``: mean absolute grey difference to the previous frame inside the fan;
* ``shadow_share``: share of the fan's beams (rays from the apex for a sector, columns for a
  linear probe) in interior shadows: runs of beams dark (smoothed grey below ``shadow_rel`` ×
  the fan's median echo) over at least ``shadow_min_dark`` of their length below the near field,
  with brighter beams on both sides. A rib or gas shadow darkens whole beams; a vessel, a cyst,
  a hypoechoic tumour or a weak far field only part of one; dark side margins of the sector
  touch its edge and are not counted. ``max_shadow_share`` = 0.05 flags about one complete rib
  shadow inside the fan;
* ``band_to_near``: median echo of the upper/middle fan band (``liver_band`` of the fan depth)
  divided by that of the near field (top 15%: skin, fat, muscle); ``dark_share``: dark share of
  the fan below the near field; ``striation``: mean |vertical| / |horizontal| grey gradient in
  the band. With the probe off the liver the band is muscle, bowel or gas: darker than the
  wall with large shadowed parts, or strongly banded (reverberation, muscle layers).
  A crude rule (``liver_not_in_view`` when ``band_to_near < 0.5`` and ``dark_share > 0.25``, or
  ``striation > 2.2``), set to keep real liver images passing: real livers imaged with low gain
  look the same to it, so it catches only a minority of the simulator's off-liver frames (most
  of the others are rejected as shadowed or pass); ``benchmarks/quality_gate.py`` prints the
  measured rates on simulated frames and on AUL.

Hand-written (with OpenCV filters) because no library offers an ultrasound quality gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from livus.preprocess.fan import detect_fan
from livus.types import Frame

VERDICTS = ("ok", "not_ultrasound", "blank", "frozen", "heavily_shadowed", "liver_not_in_view", "doppler_colour")

REASONS_EN = {
    "ok": "The frame looks like a usable B-mode liver image.",
    "not_ultrasound": "This does not look like an ultrasound image (no speckle texture in an imaged sector); results would be meaningless.",
    "blank": "The frame is blank (almost no grey-level variation): nothing was imaged.",
    "frozen": "The image is identical to the previous frame: the scanner display is probably frozen.",
    "heavily_shadowed": "A large part of the imaged sector is acoustic shadow (ribs or gas); lesions there cannot be seen.",
    "liver_not_in_view": "The liver does not seem to fill the upper and middle part of the image; the probe may be off the liver.",
    "doppler_colour": "Colour Doppler is switched on: the colour box hides the B-mode texture the models need.",
}
REASONS_ZH = {
    "ok": "该帧为可用的肝脏B超图像。",
    "not_ultrasound": "该图像不像超声图像（扫描扇区内没有斑点纹理），分析结果没有意义。",
    "blank": "该帧为空白图像（几乎没有灰度变化），未采集到任何内容。",
    "frozen": "该图像与上一帧完全相同，超声仪画面可能已冻结。",
    "heavily_shadowed": "扫描扇区的大部分为声影（肋骨或气体遮挡），其中的病灶无法显示。",
    "liver_not_in_view": "图像的上、中部似乎没有被肝脏充满，探头可能已偏离肝脏。",
    "doppler_colour": "彩色多普勒已开启，彩色取样框遮盖了模型所需的B超纹理。",
}


@dataclass
class QualityParams:
    """Thresholds of the gate (grey levels 0–255 on the working copy; shares in ``[0, 1]``)."""

    work_width_px: int = 256
    blank_std_grey: float = 3.0
    blank_p99_grey: float = 12.0
    min_fan_share: float = 0.05
    echo_grey: float = 20.0
    flat_grey: float = 40.0  # flat-share counts pixels brighter than this (padding is dark and flat)
    flat_std_grey: float = 1.0
    max_flat_share: float = 0.5
    min_speckle_corr: float = 0.5
    max_colour_share_outside: float = 0.1
    max_colour_share_fan: float = 0.5
    full_frame_fan_share: float = 0.95  # "fan" covering the whole frame (no scanner background) ...
    max_full_frame_snr: float = 14.0  # ... with a speckle SNR above this: a grey photo, not speckle
    frozen_diff_grey: float = 0.5
    min_colour_share_fan: float = 0.01
    shadow_rel: float = 0.2  # dark = smoothed grey below this share of the fan's median echo
    shadow_min_dark: float = 0.8  # a beam is shadowed when this share of it is dark
    max_shadow_share: float = 0.05  # one rib shadow (about 3 of 64 beams) inside the fan
    liver_band: tuple[float, float] = (0.15, 0.65)
    max_band_to_near: float = 0.5  # liver band much darker than the near field ...
    min_dark_share: float = 0.25  # ... with a large dark share below the near field
    max_striation: float = 2.2  # or strong horizontal banding (muscle layers, reverberation)
    # Assessability (livus.infer.assessability): which verdicts stop lesion reporting and advice.
    # ``liver_not_in_view`` is split by how it was found: against a clip's own liver frames or by
    # the striation rule → not assessable; by the absolute dark-band rule alone → limited
    # (``partial_liver``), because that rule also fires on real dim livers (19 of 588 AUL
    # images: band_to_near down to 0.0, dark_share up to 0.73; AUL striation at most 1.88).
    not_assessable_verdicts: tuple[str, ...] = ("not_ultrasound", "blank", "frozen", "doppler_colour")
    limited_verdicts: tuple[str, ...] = ("heavily_shadowed", "ceus_unchecked")
    # a clip with at least this share of its frames ``liver_not_in_view`` does not show the liver
    # (a cardiac echo, another organ): every frame of it is not assessable. Liver sweeps lose a
    # few end frames to it; the dimmest simulated liver clip of benchmarks/quality_gate.py half
    # of its frames; an echo-like clip (tests/infer/assess_fakes.py) 9 of 12, the rest shadowed
    # or (one) ok
    clip_not_liver_share: float = 0.6


@dataclass
class QualityVerdict:
    """The gate's answer for one frame; ``measures`` are the statistics behind it."""

    verdict: str
    reason: str
    reason_zh: str
    measures: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict for ``FrameResult.quality``."""
        return {"verdict": self.verdict, "ok": self.ok, "reason": self.reason, "reason_zh": self.reason_zh,
                "measures": {k: round(float(v), 4) for k, v in self.measures.items()}}


def _verdict(name: str, measures: dict[str, float]) -> QualityVerdict:
    return QualityVerdict(name, REASONS_EN[name], REASONS_ZH[name], measures)


def _small(image: np.ndarray, width: int, interpolation: int) -> np.ndarray:
    h, w = image.shape[:2]
    k = min(1.0, width / w)
    if k >= 1.0:
        return image
    return cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=interpolation)


def local_std(image: np.ndarray, size: int = 3) -> np.ndarray:
    """Standard deviation of each pixel's ``size × size`` neighbourhood (float32)."""
    g = image.astype(np.float32)
    mean = cv2.blur(g, (size, size))
    var = cv2.blur(g * g, (size, size)) - mean * mean
    return np.sqrt(np.maximum(var, 0.0))


def neighbour_correlation(grey: np.ndarray, mask: np.ndarray, row_step: int = 8) -> float:
    """Correlation coefficient of horizontally adjacent pixels inside ``mask`` (full resolution,
    every ``row_step``-th row); 0 for fewer than 100 pixel pairs or a flat region."""
    g = grey[::row_step].astype(np.float32)
    msub = mask[::row_step] > 0
    m = msub[:, :-1] & msub[:, 1:]
    if m.sum() < 100:
        return 0.0
    a, b = g[:, :-1][m], g[:, 1:][m]
    sa, sb = a.std(), b.std()
    if sa < 1e-3 or sb < 1e-3:
        return 0.0
    return float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))


def speckle_snr(grey: np.ndarray, fan: np.ndarray, window: int = 7, min_grey: float = 30.0) -> float:
    """Median local mean / local standard deviation (``window``² neighbourhoods) over lit fan
    pixels. Displayed B-mode speckle is rough (AUL: 4–12, 95% of images below 12); a textured
    photo is smooth at this scale (15–60)."""
    g = grey.astype(np.float32)
    mean = cv2.blur(g, (window, window))
    sel = fan & (mean > min_grey)
    if not sel.any():
        return 0.0
    sd = local_std(g, window)
    return float(np.median(mean[sel] / np.maximum(sd[sel], 1e-3)))


def fan_edges(fan: np.ndarray, band: tuple[float, float] = (0.3, 0.8)) -> tuple[np.ndarray, np.ndarray] | None:
    """Left and right fan edges as lines ``x = a*y + b`` (``(a, b)`` each), least-squares fits to
    the fan's row extremes between ``band`` shares of its height (where the rows span the whole
    fan: below the curved near-field arc). ``None`` for a fan of fewer than 8 such rows."""
    rows = np.nonzero(fan.any(1))[0]
    if rows.size < 10:
        return None
    top, bot = rows[0], rows[-1]
    ys = rows[(rows >= top + band[0] * (bot - top)) & (rows <= top + band[1] * (bot - top))]
    if ys.size < 8:
        return None
    sub = fan[ys]
    left = sub.argmax(1).astype(np.float64)
    right = (sub.shape[1] - 1 - sub[:, ::-1].argmax(1)).astype(np.float64)
    return _line_fit(ys, left), _line_fit(ys, right)


def _line_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares ``(slope, intercept)`` of ``y = slope * x + intercept`` (closed form:
    ``np.polyfit`` costs ten times more for these few points)."""
    x = x.astype(np.float64)
    xm, ym = x.mean(), y.mean()
    var = float(((x - xm) ** 2).sum())
    slope = float(((x - xm) * (y - ym)).sum() / var) if var > 0 else 0.0
    return np.array([slope, ym - slope * xm])


def beam_image(image: np.ndarray, fan: np.ndarray, n_beams: int = 64) -> tuple[np.ndarray, np.ndarray] | None:
    """Resample ``image`` along the fan's beams: column ``k`` of the result follows the line at
    lateral share ``(k + 0.5) / n_beams`` between the fitted fan edges (for a sector these are
    the rays from the apex, for a linear probe the image columns). Returns ``(beams, valid)`` with
    one row per image row; ``valid`` marks samples inside the fan. ``None`` without fan edges.
    Hand-written because the fan geometry (not a polar transform about a known centre) defines it."""
    edges = fan_edges(fan)
    if edges is None:
        return None
    (al, bl), (ar, br) = edges
    ys = np.arange(fan.shape[0], dtype=np.float32)[:, None]
    u = ((np.arange(n_beams, dtype=np.float32) + 0.5) / n_beams)[None, :]
    xl, xr = al * ys + bl, ar * ys + br
    map_x = (xl + u * (xr - xl)).astype(np.float32)
    map_y = np.repeat(ys, n_beams, 1).astype(np.float32)
    beams = cv2.remap(image.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0)
    valid = cv2.remap(fan.astype(np.uint8), map_x, map_y, cv2.INTER_NEAREST, borderValue=0) > 0
    return beams, valid


def shadow_share(smooth: np.ndarray, fan: np.ndarray, dark_grey: float, min_dark: float,
                 near_field: float = 0.15, n_beams: int = 64) -> float:
    """Share of the fan's beams (:func:`beam_image`) inside interior shadows: runs of beams that
    are dark (``smooth < dark_grey``) over at least ``min_dark`` of their length below the top
    ``near_field`` share of the fan (the wall layers above a rib are bright), with brighter beams
    on BOTH sides. A rib or gas shadow darkens whole beams inside the fan; vessels, cysts, a large
    hypoechoic tumour or a weak far field darken only part of a beam, and the dark margins many
    scanners show along the sector's side edges touch the edge, so none of these count."""
    res = beam_image(smooth, fan, n_beams)
    if res is None:
        return 0.0
    beams, valid = res
    rows = np.nonzero(valid.any(1))[0]
    if rows.size == 0:
        return 0.0
    start = rows[0] + near_field * (rows[-1] - rows[0])
    below = valid & (np.arange(valid.shape[0])[:, None] >= start)
    n = below.sum(0)
    use = np.nonzero(n >= max(4, 0.5 * n.max()))[0]
    if use.size < 3:
        return 0.0
    dark = (((beams < dark_grey) & below).sum(0) / np.maximum(n, 1))[use] >= min_dark
    # drop the dark runs touching either side edge, keep the interior ones
    interior = dark.copy()
    edge_runs = [range(len(dark)), range(len(dark) - 1, -1, -1)]
    for order in edge_runs:
        for i in order:
            if not dark[i]:
                break
            interior[i] = False
    return float(interior.sum() / use.size)


def depth_profile(smooth: np.ndarray, grey: np.ndarray, fan: np.ndarray, median_echo: float,
                  params: QualityParams) -> dict[str, float]:
    """Echo of the upper/middle fan band relative to the near field, dark share below the near
    field, and the vertical/horizontal gradient ratio (striation) in the band."""
    rows = np.nonzero(fan.any(1))[0]
    if rows.size < 4:
        return {"band_to_near": 0.0, "dark_share": 1.0, "striation": 0.0}
    top, bot = rows[0], rows[-1]
    y = np.arange(fan.shape[0])[:, None]
    near = fan & (y < top + 0.15 * (bot - top))
    below = fan & (y >= top + 0.15 * (bot - top))
    band = below & (y <= top + params.liver_band[1] * (bot - top))
    med_near = float(np.median(smooth[near])) if near.any() else 0.0
    med_band = float(np.median(smooth[band])) if band.any() else 0.0
    s1 = cv2.GaussianBlur(grey, (0, 0), 1.0)
    gy = np.abs(cv2.Sobel(s1, cv2.CV_32F, 0, 1))
    gx = np.abs(cv2.Sobel(s1, cv2.CV_32F, 1, 0))
    return {
        "band_to_near": med_band / max(med_near, 1.0),
        "dark_share": float(((smooth < params.shadow_rel * median_echo) & below).sum() / max(1, below.sum())),
        "striation": float(gy[band].mean() / max(float(gx[band].mean()), 1e-6)) if band.any() else 0.0,
    }


def quality_measures(frame: Frame, fan_mask: np.ndarray | None = None, previous: np.ndarray | None = None,
                     params: QualityParams | None = None) -> dict[str, float]:
    """All statistics of the gate for one frame (see module docstring for their meaning)."""
    p = params or QualityParams()
    grey = frame.pixels
    if fan_mask is None:
        fan_mask = detect_fan(grey).mask
    g = _small(grey, p.work_width_px, cv2.INTER_AREA).astype(np.float32)
    fan = _small(fan_mask.astype(np.uint8), p.work_width_px, cv2.INTER_NEAREST) > 0
    m: dict[str, float] = {
        "grey_std": float(g.std()),
        "grey_p99": float(np.percentile(g, 99)),
        "fan_share": float(fan.mean()),
    }
    inner = cv2.erode(fan.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if not inner.any():
        inner = fan
    smooth = cv2.GaussianBlur(g, (0, 0), 2.0)
    tex = local_std(g, 3)
    echo = inner & (smooth > p.echo_grey)
    m["echo_share"] = float(echo.sum() / max(1, inner.sum()))
    lit = inner & (smooth > p.flat_grey)
    m["flat_share"] = float((lit & (tex < p.flat_std_grey)).sum() / max(1, lit.sum()))
    m["speckle_corr"] = neighbour_correlation(grey, fan_mask)
    m["speckle_snr"] = speckle_snr(g, inner)
    median_echo = float(np.median(smooth[echo])) if echo.any() else 0.0
    m["median_echo_grey"] = median_echo
    if frame.color_mask is not None:
        colour = _small(frame.color_mask.astype(np.float32), p.work_width_px, cv2.INTER_AREA)
        m["colour_share_fan"] = float(colour[fan].mean()) if fan.any() else 0.0
        m["colour_share_outside"] = float(colour[~fan].mean()) if (~fan).any() else 0.0
    else:
        m["colour_share_fan"] = m["colour_share_outside"] = 0.0
    if previous is not None and previous.shape == grey.shape:
        prev = _small(previous, p.work_width_px, cv2.INTER_AREA).astype(np.float32)
        diff = np.abs(g - prev)
        m["frame_diff_grey"] = float(diff[fan].mean()) if fan.any() else float(diff.mean())
    m["shadow_share"] = shadow_share(smooth, inner, p.shadow_rel * median_echo, p.shadow_min_dark)
    m.update(depth_profile(smooth, g, inner, median_echo, p))
    return m


def classify_measures(m: dict[str, float], params: QualityParams | None = None) -> str:
    """The verdict for a set of :func:`quality_measures` (first rule that fires, in the order of
    the module docstring's table)."""
    p = params or QualityParams()
    if m["grey_std"] < p.blank_std_grey or m["grey_p99"] < p.blank_p99_grey:
        return "blank"
    if (m["fan_share"] < p.min_fan_share or m["flat_share"] > p.max_flat_share
            or m["speckle_corr"] < p.min_speckle_corr or m["colour_share_outside"] > p.max_colour_share_outside
            or m["colour_share_fan"] > p.max_colour_share_fan
            or (m["fan_share"] > p.full_frame_fan_share and m["speckle_snr"] > p.max_full_frame_snr)):
        return "not_ultrasound"
    if m.get("frame_diff_grey", np.inf) < p.frozen_diff_grey:
        return "frozen"
    if m["colour_share_fan"] >= p.min_colour_share_fan:
        return "doppler_colour"
    if m["shadow_share"] > p.max_shadow_share:
        return "heavily_shadowed"
    if (m["band_to_near"] < p.max_band_to_near and m["dark_share"] > p.min_dark_share) or m["striation"] > p.max_striation:
        return "liver_not_in_view"
    return "ok"


def assess_quality(frame: Frame, fan_mask: np.ndarray | None = None, previous: np.ndarray | None = None,
                   params: QualityParams | None = None) -> QualityVerdict:
    """Quality verdict of one frame.

    ``fan_mask``: 0/1 mask of the fan in original pixels (detected when ``None``; pass the cached
    one in a clip to stay within a few ms). ``previous``: the previous frame's grey pixels of the
    same clip (enables the ``frozen`` check).
    """
    m = quality_measures(frame, fan_mask, previous, params)
    return _verdict(classify_measures(m, params), m)


@dataclass
class ClipQualityGate:
    """The gate over the frames of one clip, in order: remembers the previous frame (``frozen``)
    and the clip's own typical ``band_to_near`` / ``dark_share`` over its ``ok`` frames, and also
    calls a frame ``liver_not_in_view`` when, against that reference (after ``min_reference``
    ok frames), its band falls below ``rel_band_to_near`` × the clip median with a dark share
    ``dark_share_rise`` above the clip median. A relative rule is much safer than the absolute
    one: a clip's gain and depth stay the same while the probe slides off the liver.

    ``fan_mask`` is detected on the first frame (or after a size change) and reused.
    """

    params: QualityParams = field(default_factory=QualityParams)
    rel_band_to_near: float = 0.75
    dark_share_rise: float = 0.08
    min_reference: int = 3
    _previous: np.ndarray | None = field(default=None, init=False, repr=False)
    _fan: np.ndarray | None = field(default=None, init=False, repr=False)
    _b2n: list[float] = field(default_factory=list, init=False, repr=False)
    _dark: list[float] = field(default_factory=list, init=False, repr=False)

    def assess(self, frame: Frame, fan_mask: np.ndarray | None = None) -> QualityVerdict:
        if fan_mask is None:
            if self._fan is None or self._fan.shape != frame.pixels.shape:
                self._fan = detect_fan(frame.pixels).mask
            fan_mask = self._fan
        m = quality_measures(frame, fan_mask, self._previous, self.params)
        self._previous = frame.pixels
        name = classify_measures(m, self.params)
        if name == "ok" and len(self._b2n) >= self.min_reference:
            ref_b2n, ref_dark = float(np.median(self._b2n)), float(np.median(self._dark))
            m["clip_band_to_near"], m["clip_dark_share"] = ref_b2n, ref_dark
            if m["band_to_near"] < self.rel_band_to_near * ref_b2n and m["dark_share"] > ref_dark + self.dark_share_rise:
                name = "liver_not_in_view"
        if name == "ok":
            self._b2n.append(m["band_to_near"])
            self._dark.append(m["dark_share"])
        return _verdict(name, m)
