"""Fonts that show Chinese and Latin text in overlays and PDF reports.

The bundled ``NotoSansSC-Regular-subset.otf`` (SIL OFL 1.1, ``OFL.txt``; rebuilt by
``build_subset.py``) covers ASCII, Latin-1, punctuation and all GB 2312 hanzi, so reports work on
a fresh install with no system font. A full system CJK font (Debian ``fonts-noto-cjk`` or
``fonts-wqy-microhei``) is used only as a fallback for characters outside that subset.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

BUNDLED_FONT = Path(__file__).resolve().parent / "NotoSansSC-Regular-subset.otf"

SYSTEM_CJK_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
)


def cjk_font_path() -> Path:
    """Path of the bundled CJK font (always present in the package)."""
    if not BUNDLED_FONT.is_file():
        raise FileNotFoundError(f"bundled font missing: {BUNDLED_FONT} (reinstall livus)")
    return BUNDLED_FONT


def system_fallback_fonts() -> list[Path]:
    """System CJK fonts found on this machine (may be empty)."""
    return [p for p in SYSTEM_CJK_FONTS if p.is_file()]


@lru_cache(maxsize=32)
def pil_font(size_px: int) -> ImageFont.FreeTypeFont:
    """Pillow font of the bundled CJK face at ``size_px`` pixels."""
    return ImageFont.truetype(str(cjk_font_path()), size=int(size_px))
