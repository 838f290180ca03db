"""Rebuild the bundled CJK subset font (developer tool, not used at run time).

The report needs a font that shows Chinese on a fresh machine with no manual step, so a subset
of Noto Sans SC Regular (SIL Open Font License 1.1, see OFL.txt) is committed next to this file.
The subset keeps ASCII, Latin-1, general/CJK punctuation, full-width forms, a few symbols used in
reports (×, ±, ≤, ≥, →, µ) and every hanzi of GB 2312 (6763 characters, which covers the report
strings and nearly all names written in simplified Chinese).

Usage::

    pip download --no-deps pylopdf-fonts-zh-cn   # ships NotoSansSC-Regular.otf (OFL)
    python -m livus.report.fonts.build_subset NotoSansSC-Regular.otf
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset

OUT_NAME = "NotoSansSC-Regular-subset.otf"


def gb2312_chars() -> set[str]:
    """All characters encodable in GB 2312 (rows 0xA1–0xF7, cells 0xA1–0xFE)."""
    chars: set[str] = set()
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars


def wanted_codepoints() -> list[int]:
    cps = set(range(0x20, 0x7F)) | set(range(0xA0, 0x180))
    cps |= set(range(0x2000, 0x2070)) | set(range(0x2190, 0x21A0)) | set(range(0x2200, 0x2270))
    cps |= set(range(0x3000, 0x3040)) | set(range(0xFF00, 0xFFF0)) | {0x00D7, 0x00B1, 0x00B5, 0x03BC}
    cps |= {ord(c) for c in gb2312_chars()}
    return sorted(cps)


def build(source: Path, out_dir: Path) -> Path:
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    font = subset.load_font(str(source), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=wanted_codepoints())
    subsetter.subset(font)
    out = out_dir / OUT_NAME
    subset.save_font(font, str(out), options)
    return out


if __name__ == "__main__":
    path = build(Path(sys.argv[1]), Path(__file__).resolve().parent)
    print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")
