"""Core data types shared by every part of livus.

Conventions (apply everywhere in the package):

* Image coordinates are ``(x, y)`` in pixels of the ORIGINAL image, x to the right, y down,
  origin at the centre of the top-left pixel.
* Angles are in degrees, measured from the +x axis towards +y (clockwise on screen because y
  points down), in ``[0, 180)`` for ellipse axes.
* Names carry units: ``_px`` pixels, ``_mm`` millimetres, ``_s`` seconds.
* Pixel spacing is ``(dx_mm, dy_mm)``: millimetres per pixel along x (columns) and y (rows), or
  ``None`` when unknown (then no millimetre value is ever reported).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

RESULT_SCHEMA = "livus.result/1"
CASE_SCHEMA = "livus.case/1"

Point = tuple[float, float]
Polygon = list[list[float]]


@dataclass
class Frame:
    """One grey-level ultrasound frame as read from a source.

    ``pixels`` is a 2-D ``uint8`` array (rows, cols). ``color_mask`` marks pixels that carried
    colour (e.g. a colour-Doppler overlay) in the source; the grey image never mixes colour in.
    """

    pixels: np.ndarray
    source: str
    frame_index: int = 0
    time_s: float | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    color_mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.pixels.ndim != 2 or self.pixels.dtype != np.uint8:
            raise ValueError(
                f"Frame pixels must be a 2-D uint8 array, got {self.pixels.dtype} {self.pixels.shape}"
            )

    @property
    def size_px(self) -> tuple[int, int]:
        """Image size as ``(width, height)`` in pixels."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])

    @property
    def has_color(self) -> bool:
        return self.color_mask is not None and bool(self.color_mask.any())


def length_mm(dx_px: float, dy_px: float, spacing_mm: tuple[float, float] | None) -> float | None:
    """Length in mm of the pixel vector ``(dx_px, dy_px)``; ``None`` when spacing is unknown."""
    if spacing_mm is None:
        return None
    return float(math.hypot(dx_px * spacing_mm[0], dy_px * spacing_mm[1]))


def ellipse_axes_mm(
    long_axis_px: float, short_axis_px: float, angle_deg: float, spacing_mm: tuple[float, float] | None
) -> tuple[float | None, float | None]:
    """Long and short axis lengths (full diameters) in mm, honouring anisotropic spacing."""
    a = math.radians(angle_deg)
    long_mm = length_mm(long_axis_px * math.cos(a), long_axis_px * math.sin(a), spacing_mm)
    short_mm = length_mm(-short_axis_px * math.sin(a), short_axis_px * math.cos(a), spacing_mm)
    return long_mm, short_mm


def ellipse_bbox(
    center_px: Point, long_axis_px: float, short_axis_px: float, angle_deg: float
) -> list[float]:
    """Tight axis-aligned box ``[x0, y0, x1, y1]`` of an oriented ellipse (axes are diameters)."""
    a = math.radians(angle_deg)
    ra, rb = long_axis_px / 2.0, short_axis_px / 2.0
    hw = math.sqrt((ra * math.cos(a)) ** 2 + (rb * math.sin(a)) ** 2)
    hh = math.sqrt((ra * math.sin(a)) ** 2 + (rb * math.cos(a)) ** 2)
    cx, cy = center_px
    return [cx - hw, cy - hh, cx + hw, cy + hh]


def box_iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two ``[x0, y0, x1, y1]`` boxes (0 when both are empty)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _round_list(values: Any, ndigits: int = 2) -> Any:
    if isinstance(values, (list, tuple)):
        return [_round_list(v, ndigits) for v in values]
    if isinstance(values, (float, np.floating)):
        return round(float(values), ndigits)
    if isinstance(values, np.integer):
        return int(values)
    return values


@dataclass
class Lesion:
    """One lesion found in one frame (all coordinates in original-image pixels)."""

    id: int
    score: float
    center_px: Point
    long_axis_px: float
    short_axis_px: float
    angle_deg: float
    polygon_px: Polygon = field(default_factory=list)
    long_axis_mm: float | None = None
    short_axis_mm: float | None = None
    malignancy: float | None = None
    features: dict[str, float] = field(default_factory=dict)
    track_id: int | None = None
    explanation: dict[str, Any] = field(default_factory=dict)

    @property
    def bbox_px(self) -> list[float]:
        return ellipse_bbox(self.center_px, self.long_axis_px, self.short_axis_px, self.angle_deg)

    def fill_mm(self, spacing_mm: tuple[float, float] | None) -> None:
        """Set ``long_axis_mm``/``short_axis_mm`` from the pixel axes (``None`` without spacing)."""
        self.long_axis_mm, self.short_axis_mm = ellipse_axes_mm(
            self.long_axis_px, self.short_axis_px, self.angle_deg, spacing_mm
        )

    def to_json_dict(self) -> dict[str, Any]:
        d = {
            "id": self.id,
            "score": round(float(self.score), 4),
            "center_px": _round_list(list(self.center_px)),
            "long_axis_px": round(float(self.long_axis_px), 2),
            "short_axis_px": round(float(self.short_axis_px), 2),
            "angle_deg": round(float(self.angle_deg), 2),
            "bbox_px": _round_list(self.bbox_px),
            "polygon_px": _round_list([list(p) for p in self.polygon_px], 1),
            "long_axis_mm": None if self.long_axis_mm is None else round(self.long_axis_mm, 2),
            "short_axis_mm": None if self.short_axis_mm is None else round(self.short_axis_mm, 2),
            "malignancy": None if self.malignancy is None else round(float(self.malignancy), 4),
            "features": {k: round(float(v), 4) for k, v in self.features.items()},
        }
        if self.track_id is not None:
            d["track_id"] = self.track_id
        if self.explanation:
            d["explanation"] = self.explanation
        return d

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> Lesion:
        return cls(
            id=int(d["id"]),
            score=float(d["score"]),
            center_px=(float(d["center_px"][0]), float(d["center_px"][1])),
            long_axis_px=float(d["long_axis_px"]),
            short_axis_px=float(d["short_axis_px"]),
            angle_deg=float(d["angle_deg"]),
            polygon_px=[list(map(float, p)) for p in d.get("polygon_px", [])],
            long_axis_mm=d.get("long_axis_mm"),
            short_axis_mm=d.get("short_axis_mm"),
            malignancy=d.get("malignancy"),
            features=dict(d.get("features", {})),
            track_id=d.get("track_id"),
            explanation=dict(d.get("explanation", {})),
        )


ASSESSABILITY_STATUSES = ("assessable", "limited", "not_assessable")


@dataclass
class Assessability:
    """Whether a frame or a case can be assessed at all (``livus.infer.assessability``).

    ``status``: ``assessable``, ``limited`` (results given, with care) or ``not_assessable``
    (no lesions and no advice); ``reasons``: short keys such as ``shadowing`` or
    ``not_ultrasound`` (worded by ``livus.report.i18n.assessability_reason``).
    """

    status: str = "assessable"
    reasons: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.status not in ASSESSABILITY_STATUSES:
            raise ValueError(f"assessability status must be one of {ASSESSABILITY_STATUSES}, got {self.status!r}")

    @property
    def usable(self) -> bool:
        """True when results may be reported (``assessable`` or ``limited``)."""
        return self.status != "not_assessable"

    def to_json_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": list(self.reasons)}

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> Assessability:
        return cls(str(d["status"]), [str(r) for r in d.get("reasons", [])])


@dataclass
class FrameResult:
    """Everything livus says about one frame; serialises to one ``livus.result/1`` JSON line."""

    source: str
    frame_index: int
    image_size_px: tuple[int, int]
    pixel_spacing_mm: tuple[float, float] | None = None
    fan_polygon_px: Polygon | None = None
    liver_polygon_px: Polygon | None = None
    lesions: list[Lesion] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    model: dict[str, str] = field(default_factory=lambda: {"name": "none", "version": "0"})
    time_s: float | None = None
    quality: dict[str, Any] | None = None
    image_label: dict[str, float] | None = None
    # None: not judged (results written before assessability existed; see
    # livus.infer.assessability.result_assessability, which derives it from ``quality``)
    assessability: Assessability | None = None
    # image-derived liver background (livus.infer.liver_background.LiverBackground, or its JSON
    # dict when read back); None: not computed (written only when computed)
    liver_background: Any = None

    def to_json_dict(self) -> dict[str, Any]:
        d = {
            "schema": RESULT_SCHEMA,
            "source": self.source,
            "frame_index": self.frame_index,
            "time_s": self.time_s,
            "image_size_px": list(self.image_size_px),
            "pixel_spacing_mm": None if self.pixel_spacing_mm is None else _round_list(list(self.pixel_spacing_mm), 6),
            "fan_polygon_px": None if self.fan_polygon_px is None else _round_list(self.fan_polygon_px, 1),
            "liver_polygon_px": None if self.liver_polygon_px is None else _round_list(self.liver_polygon_px, 1),
            "lesions": [lesion.to_json_dict() for lesion in self.lesions],
            "image_label": self.image_label,
            "quality": self.quality,
            "assessability": None if self.assessability is None else self.assessability.to_json_dict(),
            "warnings": list(self.warnings),
            "model": dict(self.model),
        }
        if self.liver_background is not None:
            d["liver_background"] = _json_of(self.liver_background)
        return d

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> FrameResult:
        if d.get("schema") != RESULT_SCHEMA:
            raise ValueError(f"not a {RESULT_SCHEMA} record: schema={d.get('schema')!r}")
        spacing = d.get("pixel_spacing_mm")
        assessability = d.get("assessability")
        return cls(
            source=d["source"],
            frame_index=int(d["frame_index"]),
            time_s=d.get("time_s"),
            image_size_px=(int(d["image_size_px"][0]), int(d["image_size_px"][1])),
            pixel_spacing_mm=None if spacing is None else (float(spacing[0]), float(spacing[1])),
            fan_polygon_px=d.get("fan_polygon_px"),
            liver_polygon_px=d.get("liver_polygon_px"),
            lesions=[Lesion.from_json_dict(x) for x in d.get("lesions", [])],
            image_label=d.get("image_label"),
            quality=d.get("quality"),
            assessability=None if assessability is None else Assessability.from_json_dict(assessability),
            warnings=list(d.get("warnings", [])),
            model=dict(d.get("model", {})),
            liver_background=d.get("liver_background"),
        )


def _json_of(value: Any) -> Any:
    """A value's JSON form: dicts as they are, objects through their ``to_json_dict``."""
    return value if isinstance(value, dict) else value.to_json_dict()


@dataclass
class LesionTrack:
    """One lesion followed across the frames of a clip."""

    track_id: int
    source: str
    observations: list[tuple[int, Lesion]] = field(default_factory=list)  # (frame_index, lesion)
    score: float = 0.0
    malignancy: float | None = None
    long_axis_mm: float | None = None
    short_axis_mm: float | None = None
    # CEUS clips only: probabilities of livus.models.ceus (arterial_phase_hyperenhancement,
    # washout_none/late/early, capsule_enhancement); empty for B-mode clips and stills
    ceus_features: dict[str, float] = field(default_factory=dict)
    # CEUS clips only: rim APHE and marked washout measured on the time-intensity curves
    # (livus.infer.ceus_tic.MeasuredFeature.to_json_dict by feature name, measured or not and why)
    ceus_measures: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        d = {
            "track_id": self.track_id,
            "source": self.source,
            "frames": [fi for fi, _ in self.observations],
            "score": round(float(self.score), 4),
            "malignancy": None if self.malignancy is None else round(float(self.malignancy), 4),
            "long_axis_mm": self.long_axis_mm,
            "short_axis_mm": self.short_axis_mm,
        }
        if self.ceus_features:
            d["ceus_features"] = {k: round(float(v), 4) for k, v in self.ceus_features.items()}
        if self.ceus_measures:
            d["ceus_measures"] = self.ceus_measures
        return d


@dataclass
class PatientBackground:
    """Liver background of the patient, as far as known (``None`` = unknown)."""

    hbv: bool | None = None
    hcv: bool | None = None
    cirrhosis: bool | None = None
    afp_ng_ml: float | None = None
    prior_lesions: int | None = None
    patient_id: str | None = None  # who the images belong to, as the source names them (DICOM PatientID or typed in)
    patient_name: str | None = None


@dataclass
class CaseResult:
    """All lesions of one case with the case-level assessment."""

    case_id: str
    sources: list[str] = field(default_factory=list)
    tracks: list[LesionTrack] = field(default_factory=list)
    patient: PatientBackground = field(default_factory=PatientBackground)
    risk: float | None = None
    priority: str | None = None  # routine / soon / urgent
    follow_up_months: float | None = None
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    model: dict[str, str] = field(default_factory=dict)
    assessability: Assessability | None = None  # None: not judged
    rules: list[str] = field(default_factory=list)  # ids of the rules in ``reasons``, first = deciding
    # LI-RADS of the case (livus.infer.lirads_case.LiradsResult); None: not assigned
    lirads: Any = None
    # image-derived liver background of the examination (livus.infer.liver_background); None: not assessed
    liver_background: Any = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "schema": CASE_SCHEMA,
            "case_id": self.case_id,
            "sources": self.sources,
            "lesions": [t.to_json_dict() for t in self.tracks],
            "patient": asdict(self.patient),
            "risk": self.risk,
            "priority": self.priority,
            "follow_up_months": self.follow_up_months,
            "assessability": None if self.assessability is None else self.assessability.to_json_dict(),
            "rules": self.rules,
            "reasons": self.reasons,
            "warnings": self.warnings,
            "lirads": None if self.lirads is None else self.lirads.to_json_dict(),
            "liver_background": None if self.liver_background is None else _json_of(self.liver_background),
            "model": self.model,
        }
