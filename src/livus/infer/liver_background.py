"""Image-derived liver background: steatosis grade and signs of fibrosis / cirrhosis from the
liver's grey levels, per frame and per examination, with confidences and the measures behind
them. A finding to confirm, never a diagnosis.

Why hand-written measures: no maintained library grades diffuse liver disease from B-mode
pixels. The measures are the ones radiologists read by eye, made numeric:

* brightness and depth attenuation (steatosis): median grey of the shallow third of the liver,
  the slope of the row medians with depth (grey levels per cm) and the deep-minus-shallow
  difference, the share of dark (vessel) pixels, which falls as vessel walls blur;
* echotexture (fibrosis): grey-level co-occurrence statistics (scikit-image ``graycomatrix``,
  contrast / homogeneity / correlation at 1 and 3 mm), the spread of band-pass images at a fine
  (1-4 mm) and a coarse (2.5-10 mm) scale, and the share of bright band pixels (septa,
  periportal bands, network pattern);
* the liver surface, where it is in view (the top of the liver outline lies below the top of
  the fan over at least ``MIN_SURFACE_MM``): the capsule is the brightest row near that outline,
  its roughness the RMS distance (mm) to a smooth fit.

The image is first resampled to ``WORK_SPACING_MM`` per pixel so the measures mean the same on
every scanner. Pixel spacing unknown: the fan is taken to be ``ASSUMED_DEPTH_MM`` deep and the
result says so (``spacing_assumed``).

The measures are combined by multinomial logistic models whose weights
(``liver_background.json``) are calibrated on simulated livers of known grade only
(``benchmarks/liver_background.py --fit``); see ``docs/liver_background.md`` for what this does
and does not validate. Coordinates: image rows/columns of the original frame (row = depth).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.ndimage import median_filter

from livus.shapes import polygon_mask

WORK_SPACING_MM = 0.4
ASSUMED_DEPTH_MM = 150.0
MIN_LIVER_AREA_MM2 = 600.0
MIN_SURFACE_MM = 20.0
STEATOSIS_CLASSES = ("none", "mild", "moderate", "severe")
FIBROSIS_CLASSES = ("none", "fibrosis", "cirrhosis")  # F0-F1 / F2-F3 / F4 (simulated METAVIR-like grades)
CIRRHOSIS_SIGNS_MIN = 0.6  # cirrhosis probability from which reports state "signs of cirrhosis"
MODEL_FILE = "liver_background.json"
MODEL_SCHEMA = "livus.liver_background/1"
FEATURES = (
    "shallow_grey", "atten_slope_grey_per_cm", "deep_minus_shallow", "dark_fraction",
    "glcm_contrast_1mm", "glcm_homogeneity_1mm", "glcm_correlation_1mm",
    "glcm_contrast_3mm", "glcm_correlation_3mm",
    "bandpass_fine", "bandpass_coarse", "bright_band_fraction",
    "surface_roughness_mm", "surface_in_view",
)


@dataclass
class LiverBackground:
    """The liver background of one frame or one examination (``None`` values: not assessed).

    ``steatosis``: none / mild / moderate / severe; ``fibrosis``: none / fibrosis / cirrhosis
    (signs of; F0-F1 / F2-F3 / F4); ``*_probs``: class probabilities (calibrated on simulated
    livers only); ``surface``: smooth / irregular / nodular / not_in_view; ``measures``: the
    numbers behind them; ``frames``: frames it summarises; ``reason``: why not assessed."""

    steatosis: str | None = None
    steatosis_probs: dict[str, float] = field(default_factory=dict)
    fibrosis: str | None = None
    fibrosis_probs: dict[str, float] = field(default_factory=dict)
    surface: str | None = None
    measures: dict[str, float | None] = field(default_factory=dict)
    spacing_assumed: bool = False
    frames: int = 1
    reason: str | None = None

    @property
    def assessed(self) -> bool:
        return self.steatosis is not None

    @property
    def steatosis_confidence(self) -> float | None:
        return self.steatosis_probs.get(self.steatosis) if self.steatosis else None

    @property
    def fibrosis_confidence(self) -> float | None:
        return self.fibrosis_probs.get(self.fibrosis) if self.fibrosis else None

    @property
    def cirrhosis_probability(self) -> float | None:
        """Probability of the cirrhosis class (the case rules' at-risk signal)."""
        return self.fibrosis_probs.get("cirrhosis") if self.fibrosis_probs else None

    @property
    def cirrhosis_signs(self) -> bool | None:
        """Whether reports state signs of cirrhosis (probability >= ``CIRRHOSIS_SIGNS_MIN``)."""
        p = self.cirrhosis_probability
        return None if p is None else p >= CIRRHOSIS_SIGNS_MIN

    def to_json_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None or not np.isfinite(v) else round(float(v), 4)

        return {
            "assessed": self.assessed,
            "reason": self.reason,
            "steatosis": self.steatosis,
            "steatosis_confidence": r(self.steatosis_confidence),
            "steatosis_probs": {k: r(v) for k, v in self.steatosis_probs.items()},
            "fibrosis": self.fibrosis,
            "fibrosis_confidence": r(self.fibrosis_confidence),
            "fibrosis_probs": {k: r(v) for k, v in self.fibrosis_probs.items()},
            "cirrhosis_signs": self.cirrhosis_signs,
            "surface": self.surface,
            "measures": {k: r(v) for k, v in self.measures.items()},
            "spacing_assumed": self.spacing_assumed,
            "frames": self.frames,
            "note": "image-derived, calibrated on simulated livers only; not a diagnosis",
        }

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> LiverBackground:
        return cls(d.get("steatosis"), dict(d.get("steatosis_probs") or {}), d.get("fibrosis"),
                   dict(d.get("fibrosis_probs") or {}), d.get("surface"), dict(d.get("measures") or {}),
                   bool(d.get("spacing_assumed")), int(d.get("frames", 1)), d.get("reason"))


# ---------------------------------------------------------------- measures (pure functions)


SCALE_RANGE = (1 / 16, 4.0)  # original px → work px; beyond it the spacing or the fan is implausible


def work_scale(shape: tuple[int, int], fan_mask: np.ndarray | None, spacing_mm: float | None) -> tuple[float, bool]:
    """Resampling factor (original px → work px) and whether the spacing was assumed."""
    if spacing_mm and spacing_mm > 0:
        return float(np.clip(spacing_mm / WORK_SPACING_MM, *SCALE_RANGE)), False
    usable = fan_mask is not None and fan_mask.shape == tuple(shape) and fan_mask.any()
    rows = np.nonzero(fan_mask.any(axis=1))[0] if usable else np.arange(shape[0])
    # a "fan" shorter than half the frame (a dark contrast frame, a failed fan search) is not the
    # imaging depth: without this a few-row fan made a 20000-pixel working image
    height_px = max(int(rows[-1] - rows[0] + 1), shape[0] // 2, 1)
    return float(np.clip((ASSUMED_DEPTH_MM / height_px) / WORK_SPACING_MM, *SCALE_RANGE)), True


def _resample(img: np.ndarray, mask: np.ndarray, fan: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = img.shape
    size = (max(int(round(w * s)), 8), max(int(round(h * s)), 8))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    g = cv2.resize(img.astype(np.float32), size, interpolation=interp)
    m = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    f = cv2.resize(fan.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return g, m, f


def _px(mm: float) -> float:
    return mm / WORK_SPACING_MM


def _smooth(g: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur; wide kernels run on a downsampled copy (same result to within a grey level)."""
    f = int(sigma_px // 3)
    if f < 2:
        return cv2.GaussianBlur(g, (0, 0), sigma_px)
    h, w = g.shape
    small = cv2.resize(g, (max(w // f, 1), max(h // f, 1)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma_px / f)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def depth_measures(g: np.ndarray, m: np.ndarray) -> dict[str, float]:
    """Brightness and attenuation of the parenchyma (``m``: without vessels and specular lines)
    by depth: row means, their thirds and their slope (grey levels per cm)."""
    rows = np.nonzero(m.sum(axis=1) >= max(5, int(_px(3))))[0]
    meds = (g[rows] * m[rows]).sum(axis=1) / m[rows].sum(axis=1)  # row means of the trimmed parenchyma
    depth_cm = rows * WORK_SPACING_MM / 10.0
    third = max(len(rows) // 3, 1)
    shallow = float(np.median(meds[:third]))
    deep = float(np.median(meds[-third:]))
    slope = float(np.polyfit(depth_cm, meds, 1)[0]) if len(rows) >= 3 and np.ptp(depth_cm) > 0 else 0.0
    return {"shallow_grey": shallow, "atten_slope_grey_per_cm": slope, "deep_minus_shallow": deep - shallow}


def texture_measures(g: np.ndarray, m: np.ndarray, levels: int = 32) -> dict[str, float]:
    """GLCM statistics (pixels outside ``m`` excluded), band-pass spreads and bright-band share."""
    from skimage.feature import graycomatrix, graycoprops

    vals = g[m]
    lo, hi = np.percentile(vals, [1, 99])
    q = np.zeros(g.shape, np.uint8)  # 0: excluded; grey levels quantised only where they are used
    q[m] = np.clip((vals - lo) / max(hi - lo, 1e-3) * (levels - 1), 0, levels - 1).astype(np.uint8) + 1
    out: dict[str, float] = {}
    for mm in (1.0, 3.0):
        d = max(int(round(_px(mm))), 1)
        P = graycomatrix(q, [d], [0, np.pi / 2], levels=levels + 1, symmetric=True, normed=False)
        P = P[1:, 1:].astype(np.float64)  # drop pairs that touch excluded pixels
        P /= max(P.sum(axis=(0, 1), keepdims=True).min(), 1.0)
        tag = f"{int(mm)}mm"
        out[f"glcm_contrast_{tag}"] = float(graycoprops(P, "contrast").mean())
        out[f"glcm_correlation_{tag}"] = float(np.nan_to_num(graycoprops(P, "correlation")).mean())
        if mm == 1.0:
            out[f"glcm_homogeneity_{tag}"] = float(graycoprops(P, "homogeneity").mean())
    med = float(np.median(vals)) or 1.0
    inner = cv2.erode(m.astype(np.uint8), np.ones((int(_px(4)) | 1,) * 2, np.uint8)) > 0
    if inner.sum() < 50:
        inner = m

    def band(a_mm: float, b_mm: float) -> np.ndarray:
        return (_smooth(g, _px(a_mm)) - _smooth(g, _px(b_mm)))[inner]

    for name, (a, b) in (("bandpass_fine", (1.0, 4.0)), ("bandpass_coarse", (2.5, 10.0))):
        q25, q75 = np.percentile(band(a, b), [25, 75])
        out[name] = float((q75 - q25) / med)
    bp = band(0.8, 8.0)
    q25, q50, q75 = np.percentile(bp, [25, 50, 75])
    out["bright_band_fraction"] = float(np.mean(bp > q50 + 2.5 * (q75 - q25)))
    return out


def surface_measures(g: np.ndarray, m: np.ndarray, fan: np.ndarray) -> dict[str, float]:
    """Roughness (mm) of the liver surface where it lies below the fan's top edge; NaN and
    ``surface_in_view = 0`` when less than ``MIN_SURFACE_MM`` of it is in view.

    The capsule is traced as the best-scoring continuous path (dynamic programming, one row per
    column, steps of at most 1 px per column) through a ridge image (bright thin lines: minus
    the vertical second derivative of the grey levels smoothed 1 mm along the line) within
    ±4 mm of the liver outline's top; its roughness is the RMS distance to a 15 mm running
    median of the path. A bright liver (steatosis) lowers the capsule's contrast but not its
    ridge continuity, which a per-column maximum would lose."""
    cols = np.nonzero(m.any(axis=0) & fan.any(axis=0))[0]
    top_liver = np.argmax(m[:, cols], axis=0)
    top_fan = np.argmax(fan[:, cols], axis=0)
    seen = cols[top_liver - top_fan > _px(4)]
    if len(seen) * WORK_SPACING_MM < MIN_SURFACE_MM:
        return {"surface_roughness_mm": float("nan"), "surface_in_view": 0.0}
    sm = cv2.GaussianBlur(g, (0, 0), sigmaX=_px(1.0), sigmaY=_px(0.4))
    ridge = -cv2.Sobel(sm, cv2.CV_32F, 0, 2, ksize=3)
    win = int(_px(4))
    tops = np.argmax(m[:, seen], axis=0)
    offsets = np.arange(-win, win + 1)
    rows_idx = np.clip(tops[None, :] + offsets[:, None], 0, g.shape[0] - 1)  # (n_off, n_cols)
    score = ridge[rows_idx, seen[None, :]]
    score = (score - score.mean()) / (score.std() + 1e-6)
    # Viterbi over columns; the path's row is tops + offset, and may move ±1 row per column
    # (the allowed steps of all columns at once: 0 where allowed, -inf where not)
    abs_rows = rows_idx.astype(np.int64)
    step = np.abs(abs_rows.T[1:, :, None] - abs_rows.T[:-1, None, :])  # (column, row now, row before)
    penalty = np.where(step <= 1, 0.0, -np.inf)
    acc = score[:, 0].copy()
    back = np.zeros(score.shape, np.int64)
    states = np.arange(len(offsets))
    for j in range(1, score.shape[1]):
        cand = penalty[j - 1] + acc[None, :]
        back[:, j] = np.argmax(cand, axis=1)
        acc = cand[states, back[:, j]] + score[:, j]
        if not np.isfinite(acc).any():  # outline jumps by more than the window: restart the path
            acc = score[:, j].copy()
    k = int(np.argmax(acc))
    path = np.zeros(score.shape[1], np.int64)
    for j in range(score.shape[1] - 1, -1, -1):
        path[j] = abs_rows[k, j]
        k = back[k, j] if j > 0 else k
    rows = path.astype(float)
    trend = median_filter(rows, size=max(int(_px(15)) | 1, 3), mode="nearest")
    rough = float(np.sqrt(np.mean((rows - trend) ** 2)) * WORK_SPACING_MM)
    return {"surface_roughness_mm": rough, "surface_in_view": 1.0}


def liver_measures(image: np.ndarray, liver_mask: np.ndarray, fan_mask: np.ndarray | None = None,
                   spacing_mm: float | None = None, exclude: np.ndarray | None = None) -> tuple[dict[str, float], bool]:
    """All ``FEATURES`` of one grey frame (uint8, original pixels) inside ``liver_mask``
    (bool, same shape), minus ``exclude`` (e.g. detected lesions); and whether the spacing was
    assumed. ``ValueError`` when the liver in view is too small to measure."""
    if image.ndim != 2 or liver_mask.shape != image.shape:
        raise ValueError("liver background: expects a grey image and a liver mask of the same shape")
    fan = fan_mask if fan_mask is not None else image > 0
    s, assumed = work_scale(image.shape, fan, spacing_mm)
    keep = liver_mask & ~exclude if exclude is not None else liver_mask
    g, m, f = _resample(image, keep, fan, s)
    if m.sum() * WORK_SPACING_MM ** 2 < MIN_LIVER_AREA_MM2:
        raise ValueError("liver in view too small")
    med = float(np.median(g[m]))
    parenchyma = m & (g > 0.35 * med) & (g < 2.5 * med)  # without vessel lumens and specular lines
    rows_ok = parenchyma.sum(axis=1) >= max(5, int(_px(3)))
    if parenchyma.sum() * WORK_SPACING_MM ** 2 < MIN_LIVER_AREA_MM2 or rows_ok.sum() < 3:
        raise ValueError("liver in view too small")
    out = {"dark_fraction": float(np.mean(g[m] <= 0.35 * med))}
    out.update(depth_measures(g, parenchyma))
    out.update(texture_measures(g, parenchyma))
    out.update(surface_measures(g, m, f))
    return {k: out[k] for k in FEATURES}, assumed


# ---------------------------------------------------------------- grading


@dataclass
class GradeModel:
    """A multinomial logistic model on standardised measures (weights from the JSON file)."""

    classes: tuple[str, ...]
    coef: np.ndarray  # (n_classes, n_features)
    intercept: np.ndarray  # (n_classes,)

    def probs(self, z: np.ndarray) -> dict[str, float]:
        logits = self.coef @ z + self.intercept
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return {c: float(v) for c, v in zip(self.classes, p)}


@dataclass
class BackgroundModel:
    """Standardisation (mean/scale, NaN → mean) and the steatosis and fibrosis models."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    steatosis: GradeModel
    fibrosis: GradeModel
    surface_thresholds_mm: tuple[float, float]  # smooth < t0 <= irregular < t1 <= nodular
    info: dict[str, Any] = field(default_factory=dict)

    def standardise(self, measures: dict[str, float]) -> np.ndarray:
        x = np.array([measures.get(k, np.nan) for k in self.features], float)
        x = np.where(np.isfinite(x), x, self.mean)
        return (x - self.mean) / np.where(self.scale > 0, self.scale, 1.0)

    def to_json_dict(self) -> dict[str, Any]:
        def gm(g: GradeModel) -> dict:
            return {"classes": list(g.classes), "coef": np.round(g.coef, 6).tolist(),
                    "intercept": np.round(g.intercept, 6).tolist()}

        return {"schema": MODEL_SCHEMA, "features": list(self.features), "mean": np.round(self.mean, 6).tolist(),
                "scale": np.round(self.scale, 6).tolist(), "steatosis": gm(self.steatosis),
                "fibrosis": gm(self.fibrosis), "surface_thresholds_mm": list(self.surface_thresholds_mm),
                "info": self.info}


def load_background_model(path: str | Path | None = None) -> BackgroundModel:
    """The calibrated weights (default: the file shipped with livus)."""
    if path is None:
        doc = json.loads(resources.files("livus.infer").joinpath(MODEL_FILE).read_text(encoding="utf-8"))
    else:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if doc.get("schema") != MODEL_SCHEMA:
        raise ValueError(f"liver background model: expected schema {MODEL_SCHEMA}")

    def gm(d: dict) -> GradeModel:
        return GradeModel(tuple(d["classes"]), np.asarray(d["coef"], float), np.asarray(d["intercept"], float))

    return BackgroundModel(tuple(doc["features"]), np.asarray(doc["mean"], float), np.asarray(doc["scale"], float),
                           gm(doc["steatosis"]), gm(doc["fibrosis"]), tuple(doc["surface_thresholds_mm"]),
                           dict(doc.get("info", {})))


def surface_label(measures: dict[str, float], thresholds_mm: tuple[float, float]) -> str:
    if not measures.get("surface_in_view"):
        return "not_in_view"
    r = measures.get("surface_roughness_mm", float("nan"))
    return "smooth" if r < thresholds_mm[0] else "irregular" if r < thresholds_mm[1] else "nodular"


def grade(measures: dict[str, float], model: BackgroundModel, spacing_assumed: bool = False,
          frames: int = 1) -> LiverBackground:
    """Class probabilities and labels from measures."""
    z = model.standardise(measures)
    sp = model.steatosis.probs(z)
    fp = model.fibrosis.probs(z)
    return LiverBackground(max(sp, key=sp.get), sp, max(fp, key=fp.get), fp,
                           surface_label(measures, model.surface_thresholds_mm), dict(measures),
                           spacing_assumed, frames)


def frame_background(image: np.ndarray, liver_mask: np.ndarray | None, fan_mask: np.ndarray | None = None,
                     spacing_mm: float | None = None, exclude: np.ndarray | None = None,
                     model: BackgroundModel | None = None) -> LiverBackground:
    """The liver background of one frame; not assessed (with a reason) when there is no liver
    outline or too little liver in view."""
    if liver_mask is None or not liver_mask.any():
        return LiverBackground(reason="no_liver_outline")
    try:
        measures, assumed = liver_measures(image, liver_mask, fan_mask, spacing_mm, exclude)
    except ValueError:
        return LiverBackground(reason="liver_too_small")
    return grade(measures, model or load_background_model(), assumed)


def examination_background(frames: list[LiverBackground], model: BackgroundModel | None = None) -> LiverBackground:
    """One examination's background from its frames' (assessed ones only): class probabilities
    averaged; the surface from the frames that show it; measures: medians."""
    used = [b for b in frames if b.assessed]
    if not used:
        reasons = sorted({b.reason for b in frames if b.reason})
        return LiverBackground(reason=reasons[0] if reasons else "no_frame", frames=0)
    model = model or load_background_model()

    def mean_probs(key: str) -> dict[str, float]:
        classes = list(getattr(used[0], key))
        return {c: float(np.mean([getattr(b, key).get(c, 0.0) for b in used])) for c in classes}

    sp, fp = mean_probs("steatosis_probs"), mean_probs("fibrosis_probs")
    measures: dict[str, float | None] = {}
    for k in used[0].measures:
        v = [b.measures[k] for b in used if b.measures.get(k) is not None and np.isfinite(b.measures[k])]
        measures[k] = float(np.median(v)) if v else float("nan")
    seen = [b for b in used if b.measures.get("surface_in_view")]
    if seen:
        measures["surface_in_view"] = 1.0
        measures["surface_roughness_mm"] = float(np.median([b.measures["surface_roughness_mm"] for b in seen]))
    return LiverBackground(max(sp, key=sp.get), sp, max(fp, key=fp.get), fp,
                           surface_label(measures, model.surface_thresholds_mm), measures,
                           any(b.spacing_assumed for b in used), len(used))


def polygon_to_mask(polygon: list[list[float]] | None, shape: tuple[int, int]) -> np.ndarray | None:
    """Filled polygon (image pixels) as a bool mask of ``shape`` (rows, cols); ``None`` if none."""
    if not polygon or len(polygon) < 3:
        return None
    return polygon_mask(polygon, shape[1], shape[0]) > 0


def result_background(pixels: np.ndarray, result: Any, fan_mask: np.ndarray | None = None,
                      model: BackgroundModel | None = None) -> LiverBackground:
    """The background of an analysed frame: its liver outline (``result.liver_polygon_px``,
    original pixels) minus its detected lesions, its pixel spacing (mean of row/column)."""
    shape = pixels.shape[:2]
    liver = polygon_to_mask(result.liver_polygon_px, shape)
    exclude = None
    for lesion in result.lesions:
        m = polygon_to_mask(lesion.polygon_px, shape)
        if m is not None:
            exclude = m if exclude is None else exclude | m
    spacing = float(np.mean(result.pixel_spacing_mm)) if result.pixel_spacing_mm else None
    fan = fan_mask > 0 if fan_mask is not None else None
    return frame_background(pixels, liver, fan, spacing, exclude, model)


def case_background(results: list[Any]) -> LiverBackground | None:
    """The examination's background from its frame results (``FrameResult.liver_background``,
    object or JSON dict); ``None`` when no frame had one computed."""
    frames = [b if isinstance(b, LiverBackground) else LiverBackground.from_json_dict(b)
              for r in results if (b := r.liver_background) is not None]
    return examination_background(frames) if frames else None
