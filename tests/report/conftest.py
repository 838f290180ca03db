"""Fixtures for the report tests."""

from __future__ import annotations

import numpy as np
import pytest
from report_factories import make_case, make_frame, make_result

from livus.types import CaseResult, FrameResult


@pytest.fixture
def frame_grey() -> np.ndarray:
    return make_frame()


@pytest.fixture
def frame_result() -> FrameResult:
    return make_result()


@pytest.fixture
def case_result(frame_result: FrameResult) -> CaseResult:
    return make_case(frame_result)
