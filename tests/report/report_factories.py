"""Synthetic frames and results shared by the report tests (no real data needed)."""

from __future__ import annotations

import cv2
import numpy as np

from livus.types import CaseResult, FrameResult, Lesion, LesionTrack, PatientBackground


def make_frame(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """Grey speckle inside a fan-like trapezoid, black outside; a dark round 'lesion' at (120, 110)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width), np.uint8)
    fan = np.array([[width * 0.4, 5], [width * 0.6, 5], [width - 5, height - 5], [5, height - 5]], np.int32)
    cv2.fillPoly(img, [fan], 1)
    speckle = rng.gamma(2.0, 50.0, size=(height, width)).clip(0, 255).astype(np.uint8)
    img = img * speckle
    cv2.circle(img, (120, 110), 25, 30, -1)
    return img


def make_result(width: int = 320, height: int = 240, spacing: tuple[float, float] | None = (0.25, 0.25)) -> FrameResult:
    fan = [[width * 0.4, 5.0], [width * 0.6, 5.0], [width - 5.0, height - 5.0], [5.0, height - 5.0]]
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    poly = np.stack([120 + 26 * np.cos(t), 110 + 22 * np.sin(t)], axis=1).tolist()
    l1 = Lesion(id=1, score=0.91, center_px=(120.0, 110.0), long_axis_px=52.0, short_axis_px=44.0, angle_deg=0.0,
                polygon_px=poly, malignancy=0.83,
                features={"echo_hypo": 0.9, "halo": 0.7, "posterior_enhancement": 0.1})
    l2 = Lesion(id=2, score=0.45, center_px=(230.0, 180.0), long_axis_px=30.0, short_axis_px=18.0, angle_deg=30.0,
                malignancy=None)
    for lesion in (l1, l2):
        lesion.fill_mm(spacing)
    return FrameResult(source="/data/PATIENT_SECRET/scan1.dcm", frame_index=0, image_size_px=(width, height),
                       pixel_spacing_mm=spacing, fan_polygon_px=fan,
                       liver_polygon_px=[[60.0, 60.0], [260.0, 60.0], [280.0, 220.0], [40.0, 220.0]],
                       lesions=[l1, l2], model={"name": "livus-detector", "version": "0.1.0"})


def make_case(frame_result: FrameResult, assessed: bool = True) -> CaseResult:
    """A case with one track per lesion of ``frame_result``; without the case-level
    assessment (risk, priority, follow-up) when ``assessed`` is False."""
    tracks = [
        LesionTrack(track_id=lesion.id, source=frame_result.source, observations=[(frame_result.frame_index, lesion)],
                    score=lesion.score, malignancy=lesion.malignancy, long_axis_mm=lesion.long_axis_mm,
                    short_axis_mm=lesion.short_axis_mm)
        for lesion in frame_result.lesions
    ]
    case = CaseResult(case_id="case-001", sources=[frame_result.source], tracks=tracks,
                      patient=PatientBackground(hbv=True, cirrhosis=True, afp_ng_ml=25.0),
                      model={"name": "livus-detector", "version": "0.1.0"})
    if assessed:
        case.risk, case.priority, case.follow_up_months = 0.78, "urgent", 0.5
        case.reasons = ["[high_malignancy] malignancy 0.83 ≥ 0.70 → urgent, CEUS/CT within 2 weeks"]
    return case
