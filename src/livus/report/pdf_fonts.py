"""fpdf2 font objects of the prepared report fonts, parsed once per process (issue 17).

``FPDF.add_font`` parses the font file again for every document (fontTools tables, the width
of every character: ~3 ms for the prepared CJK font, ~1 ms for the Latin one, per report).
:func:`font_for_document` gives each report its own ``TTFFont`` that shares the parsed,
read-only parts (the fontTools font, cmap, glyph ids, name and metrics) with one font parsed
once per process, and has its own copy of everything a document changes: its number, the glyph
subset and its codes, the missing characters, the width table (a ``defaultdict`` that grows when
an unknown character is measured) and the font descriptor (named and given the font program when
the PDF is written). fpdf2 shares the same parts between documents itself
(``TTFFont.__deepcopy__``, used by ``FPDFRecorder``); ``tests/report/test_pdf_fonts.py`` checks
that this list covers every attribute of the fpdf2 version installed.

A shared font must never be subset by fpdf2's own output (that changes the fontTools font in
place): it is written only by ``livus.report.pdf.PreparedFontOutputProducer``, which embeds the
prepared font program as it is, and never closes a shared font.
"""

from __future__ import annotations

import copy
import threading

from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

# TTFFont attributes a document changes (the others are shared, read-only after parsing)
PER_DOCUMENT = frozenset({"i", "cw", "subset", "missing_glyphs", "biggest_size_pt", "desc"})
SHARED = frozenset({"type", "ttffile", "fontkey", "emphasis", "scale", "name", "up", "ut", "sp", "ss", "cmap",
                    "glyph_ids", "ttfont", "_hbfont", "color_font", "unicode_range", "palette_index",
                    "is_compressed", "is_cff", "is_cid_keyed", "is_symbol", "cff_ros",
                    "collection_font_number"})
MIN_PDF_VERSION = "1.6"  # what FPDF.add_font asks for a CID-keyed CFF font

_PARSED: dict[tuple[str, str], TTFFont] = {}  # (family, file) -> the font parsed in this process
_LOCK = threading.Lock()


def _parsed(family: str, path: str) -> TTFFont:
    key = (family, path)
    font = _PARSED.get(key)
    if font is None:
        with _LOCK:
            font = _PARSED.get(key)
            if font is None:
                scratch = FPDF()
                scratch.add_font(family, "", path)
                font = _PARSED[key] = scratch.fonts[f"{family.lower()}"]
    return font


def font_for_document(pdf: FPDF, family: str, path: str) -> None:
    """Add the font file ``path`` to ``pdf`` as ``family`` (regular style), as ``add_font`` does,
    from this process's parsed copy of it."""
    parsed = _parsed(family, path)
    font = copy.copy(parsed)  # the shared attributes by reference
    font.i = len(pdf.fonts) + 1
    font.cw = copy.copy(parsed.cw)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font.desc = copy.copy(parsed.desc)
    font.subset = SubsetMap(font)
    pdf.fonts[parsed.fontkey] = font
    if font.is_cff and font.is_cid_keyed:
        pdf.pdf_version = max(pdf.pdf_version, MIN_PDF_VERSION)


def is_shared(font: TTFFont) -> bool:
    """Whether ``font`` shares its fontTools font with a process-wide parsed one."""
    return any(font.ttfont is parsed.ttfont for parsed in list(_PARSED.values()))
