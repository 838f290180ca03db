"""Fixtures for the report tests."""

from __future__ import annotations

import numpy as np
import pytest
from report_factories import make_frame, make_result

from livus.types import CaseResult, FrameResult, LesionTrack, PatientBackground


@pytest.fixture
def frame_grey() -> np.ndarray:
    return make_frame()


@pytest.fixture
def frame_result() -> FrameResult:
    return make_result()


@pytest.fixture
def case_result(frame_result: FrameResult) -> CaseResult:
    tracks = []
    for lesion in frame_result.lesions:
        tracks.append(LesionTrack(track_id=lesion.id, source=frame_result.source,
                                  observations=[(0, lesion)], score=lesion.score, malignancy=lesion.malignancy,
                                  long_axis_mm=lesion.long_axis_mm, short_axis_mm=lesion.short_axis_mm))
    return CaseResult(case_id="case-001", sources=[frame_result.source], tracks=tracks,
                      patient=PatientBackground(hbv=True, cirrhosis=True, afp_ng_ml=25.0),
                      risk=0.78, priority="urgent", follow_up_months=0.5,
                      reasons=["new 13 mm lesion, malignancy 0.83, cirrhosis → urgent, CEUS/CT within 2 weeks"],
                      model={"name": "livus-detector", "version": "0.1.0"})
