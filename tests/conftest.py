"""Shared fixtures: the AUL folder (skipped cleanly when absent) and a temp output folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

AUL_DIR = Path(os.environ.get("LIVUS_AUL_DIR", Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "aul")).resolve()
ARTIFACTS_DIR = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="session")
def aul_dir() -> Path:
    if not (AUL_DIR / "Benign" / "image").is_dir():
        pytest.skip(f"AUL data not found at {AUL_DIR} (set LIVUS_AUL_DIR)")
    return AUL_DIR


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR
