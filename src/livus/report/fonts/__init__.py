"""Fonts that show Chinese and Latin text in overlays and PDF reports.

The bundled ``NotoSansSC-Regular-subset.otf`` (SIL OFL 1.1, ``OFL.txt``; rebuilt by
``build_subset.py``) covers ASCII, Latin-1, punctuation and all GB 2312 hanzi, so reports work on
a fresh install with no system font. Characters outside the subset (rare hanzi) are drawn as
missing glyphs; rebuild the subset with more characters if that matters.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

BUNDLED_FONT = Path(__file__).resolve().parent / "NotoSansSC-Regular-subset.otf"


def cjk_font_path() -> Path:
    """Path of the bundled CJK font (always present in the package)."""
    if not BUNDLED_FONT.is_file():
        raise FileNotFoundError(f"bundled font missing: {BUNDLED_FONT} (reinstall livus)")
    return BUNDLED_FONT


@lru_cache(maxsize=32)
def pil_font(size_px: int) -> ImageFont.FreeTypeFont:
    """Pillow font of the bundled CJK face at ``size_px`` pixels."""
    return ImageFont.truetype(str(cjk_font_path()), size=int(size_px))
