"""Simulated ultrasound frames with patient identity burned in, outside AND inside the fan, and
an OCR check of what can still be read (shared by the de-identification tests)."""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
from PIL import Image, ImageDraw

from livus.report.fonts import pil_font
from livus.report.ocr import TextReader
from livus.simulate.overlays import OverlayOptions
from livus.simulate.physics import build_geometry
from livus.simulate.profiles import get_profile
from livus.simulate.still import overlay_info_for, simulate_still

NAME = "SMITH^FANG"
PATIENT_ID = "SIM00003"
WHEN = datetime(2023, 6, 21, 9, 41, 5)
CJK_NAME = "王伟"
# what must not be readable after de-identification (compared without spaces, upper case)
PHI_TOKENS = ("SMITH", "FANG", PATIENT_ID, "2023-06-21", CJK_NAME)


def frame_with_phi(seed: int = 0, profile: str = "sonora_l9", size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """A simulated B-mode still (grey uint8) whose scanner text (outside the fan) shows the name,
    ID and date, with the name and date and a CJK name also burned INTO the fan."""
    rng = np.random.default_rng(seed)
    prof = get_profile(profile)
    geom = build_geometry(prof, size)
    info = overlay_info_for(prof, NAME, PATIENT_ID, WHEN)
    sim = simulate_still(rng, geom, info=info, options=OverlayOptions(text=True, body_marker=False, grey_bar=False))
    pil = Image.fromarray(sim.image)
    draw = ImageDraw.Draw(pil)
    pts = np.asarray(geom.fan_polygon)
    cx, cy = float(pts[:, 0].mean()), float(pts[:, 1].mean())
    font = pil_font(15)
    draw.text((cx - 90, cy - 40), "SMITH FANG 2023-06-21", font=font, fill=235)
    draw.text((cx - 20, cy + 30), CJK_NAME, font=font, fill=235)
    return np.asarray(pil)


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text).upper()


def readable_phi(image: np.ndarray, reader: TextReader) -> set[str]:
    """The PHI tokens the OCR can read anywhere in ``image``."""
    texts = [_squeeze(line.text) for line in reader.read(image)]
    return {token for token in PHI_TOKENS if any(_squeeze(token) in t for t in texts)}
