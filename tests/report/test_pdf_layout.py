"""The report's own text layout (``livus.report.pdf_layout``, issue 17) puts every line where
fpdf2's ``table()`` and ``multi_cell()`` put it: same line breaks, same text positions, same
boxes, same pages, for Chinese and English reports."""

from __future__ import annotations

import copy
import random
import re

import pytest
from fpdf.enums import XPos, YPos
from fpdf.errors import FPDFException
from fpdf.fonts import FontFace
from report_factories import make_case, make_result

import livus.report.pdf as report_pdf
from livus.report.content import build_report_content
from livus.report.fonts import prepared as pf
from livus.report.pdf import FONT_FAMILY, _ReportPDF, build_pdf
from livus.report.pdf_layout import TableStyle, draw_paragraph, draw_table, wrap_lines


# --------------------------------------------------------------------------- fpdf2 as reference


def fpdf2_table(pdf, rows: list[list[str]], style: TableStyle) -> None:
    """The ``FPDF.table()`` call the report used before ``draw_table``."""
    kwargs: dict = {"col_widths": style.col_widths, "line_height": style.line_height_mm, "text_align": "LEFT"}
    if not style.all_borders:
        kwargs["borders_layout"] = "HORIZONTAL_LINES"
    if style.heading_fill_rgb is not None:
        kwargs["headings_style"] = FontFace(emphasis="", fill_color=style.heading_fill_rgb)
    else:
        kwargs["first_row_as_headings"] = False
    with pdf.table(**kwargs) as table:
        for cells in rows:
            row = table.row()
            for text in cells:
                row.cell(text)


def fpdf2_paragraph(pdf, text: str, line_height_mm: float, padding_mm: float = 0.0, box: bool = False) -> None:
    """The ``FPDF.multi_cell()`` call the report used before ``draw_paragraph``."""
    pdf.multi_cell(0, line_height_mm, text, border=1 if box else 0, fill=box, padding=padding_mm, align="L",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)


TEXT_OP = re.compile(rb"BT ([\d.-]+) ([\d.-]+) Td ([^(]*)\((.*?)\) Tj ET", re.S)  # x y Td, colour/mode, string
BOX_OP = re.compile(rb"([\d.-]+) ([\d.-]+) ([\d.-]+) ([\d.-]+) re ([fSB])")
LINE_OP = re.compile(rb"([\d.-]+) ([\d.-]+) m ([\d.-]+) ([\d.-]+) l S")


def _decoder(pdf):
    """PDF string of a ``Tj`` -> text: fpdf2 numbers the glyphs of a document in the order they
    are first used, so the codes are read back through the font's own code -> character map."""
    chars = {}
    for font in pdf.fonts.values():
        for glyph, code in font.subset.items():
            if glyph is not None and isinstance(glyph.unicode, tuple):
                chars[code] = "".join(map(chr, glyph.unicode))
    escapes = {b"r": b"\r", b"n": b"\n", b"(": b"(", b")": b")", b"\\": b"\\"}

    def decode(raw: bytes) -> str:
        data = re.sub(rb"\\(.)", lambda m: escapes.get(m.group(1), m.group(1)), raw, flags=re.S)
        return "".join(chars.get(int.from_bytes(data[i:i + 2], "big"), "?") for i in range(0, len(data), 2))

    return decode


def page_ops(pdf) -> list[tuple[list, list, list]]:
    """Per page: the text shown (x, y, colour and mode, text; in order), the rectangles (normalised to lower-left
    corner and positive size, pt) and the lines drawn, from the uncompressed content streams."""
    decode = _decoder(pdf)
    out = []
    for page in range(1, pdf.pages_count + 1):
        stream = bytes(pdf.pages[page].contents)
        # fpdf2 shows an empty string where a line break falls on a line's first character (a
        # space): nothing is drawn, and ``draw_paragraph``/``draw_table`` leave it out
        texts = [(x, y, state, decode(t)) for x, y, state, t in TEXT_OP.findall(stream) if t]
        boxes = []
        for x, y, w, h, op in BOX_OP.findall(stream):
            x, y, w, h = map(float, (x, y, w, h))
            boxes.append((round(x, 1), round(min(y, y + h), 1), round(w, 1), round(abs(h), 1), op))
        lines = sorted({tuple(round(float(v), 1) for v in m) for m in LINE_OP.findall(stream)})
        out.append((texts, boxes, lines))
    return out


def _pdf(tier: str = "cjk"):
    prep = pf.prepared_font(tier)
    assert prep is not None
    pdf = _ReportPDF(footer_text="footer", font_path=prep.path)
    pdf.set_compression(False)
    pdf.add_page()
    pdf.set_font(FONT_FAMILY, size=9.5)
    return pdf


# ------------------------------------------------------------------------------------- wrapping

WORDING = [
    "恶性概率 0.83 ≥ 0.70 → 紧急，2 周内行 CEUS/CT 检查；肝硬化背景下的新发 12 mm 病灶",
    "Decision support only — not validated for clinical use. Trained on public and simulated data; "
    "findings must be confirmed by a qualified physician.",
    "posterior acoustic enhancement 0.98\nhypoechoic 0.90\nhalo 0.70",
    "a\n", "\n", "a\n\nb", "  leading", "trailing  ", "a  b  c " * 20, "x" * 300, "肝细胞癌" * 40,
    "ab cd" * 50 + "\n\n", "/data/患者_0001/series-2/img_000123.dcm, /data/患者_0001/series-2/img_000124.dcm",
    "soft\u00adhyphen " * 20, "no\u00a0break space " * 15, "tab\tseparated\ttext " * 10, "ideographic\u3000space " * 12,
]


def _random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabet = "ab  肝细胞癌动脉期高增强廓清\n,.-—()0123456789:；，。"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 260))) for _ in range(n)]


def _fpdf2_lines(pdf, text, width, padding):
    try:
        return list(pdf.multi_cell(width, text=text, align="L", padding=padding, dry_run=True, output="LINES"))
    except FPDFException as exc:
        return type(exc)


def test_wrap_lines_breaks_as_fpdf2(font_dirs):
    pdf = _pdf()
    checked = 0
    for size in (8.5, 9.5, 12.5):
        pdf.set_font(FONT_FAMILY, size=size)
        for width, padding in ((6.000036, 0), (26.5, 0), (42.0, 0), (49.0004, 0), (138.0015555, 0),
                               (180.0015555, 2), (60.0, 2), (3.0, 0)):
            for text in WORDING + _random_texts(30, seed=int(size * 10)):
                try:
                    mine = wrap_lines(pdf, text, width, padding)
                except FPDFException as exc:
                    mine = type(exc)
                assert mine == _fpdf2_lines(pdf, text, width, padding), (text[:40], width, size)
                checked += 1
    assert checked > 1000


def test_wrap_lines_with_a_core_font_is_fpdf2s():
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    text = "Decision support only, not validated for clinical use. " * 4
    assert wrap_lines(pdf, text, 40) == _fpdf2_lines(pdf, text, 40, 0)


@pytest.fixture
def font_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVUS_CACHE_DIR", str(tmp_path / "cache"))
    pf.clear_memory_cache()
    yield
    pf.clear_memory_cache()


# ------------------------------------------------------------------------ tables and paragraphs


def _rows(n: int) -> list[list[str]]:
    texts = _random_texts(3 * n, seed=n)
    return [[str(i), texts[3 * i][:30], texts[3 * i + 1][:120], "", texts[3 * i + 2]] for i in range(n)]


@pytest.mark.parametrize("style", [
    TableStyle(col_widths=(6, 26, 33, 16, 99), line_height_mm=4.2, heading_fill_rgb=(241, 243, 246)),
    TableStyle(col_widths=(42, 60, 20, 20, 38.0015555), line_height_mm=5.2, all_borders=False),
])
def test_table_is_drawn_as_fpdf2_table(font_dirs, style):
    """A table long enough for two page breaks (heading repeated), with empty cells and line feeds."""
    pages = []
    for draw in (fpdf2_table, draw_table):
        pdf = _pdf()
        pdf.set_fill_color(255, 255, 255)
        pdf.ln(30)
        draw(pdf, [["#", "image", "position", "", "features"]] + _rows(40), style)
        pdf.cell(0, 5, "after the table")
        pages.append((page_ops(pdf), pdf.get_y()))
    assert len(pages[0][0]) >= 3
    assert pages[1] == pages[0]


@pytest.mark.parametrize("box", [False, True])
def test_paragraph_is_drawn_as_fpdf2_multi_cell(font_dirs, box):
    """Paragraphs at every height of the page: some are split by a page break (a box on each page)."""
    text = (WORDING[1] + " " + WORDING[0] + " ") * 4
    pages = []
    for draw in (fpdf2_paragraph, draw_paragraph):
        pdf = _pdf()
        pdf.set_fill_color(255, 240, 240)
        pdf.set_draw_color(204, 68, 68)
        for i in range(60):
            draw(pdf, f"{i}: " + text[: 40 + 13 * i], 5.2, padding_mm=2 if box else 0, box=box)
        pages.append((page_ops(pdf), pdf.get_y()))
    page_list = pages[0][0]
    assert len(page_list) >= 5
    # some paragraphs go on over a page break (the new page starts within a paragraph)
    assert any(not texts[0][3].split(":")[0].isdigit() for texts, _, _ in page_list[1:])
    if box:
        assert sum(len(boxes) for _, boxes, _ in page_list) > 60  # a box on each page of a split one
    assert pages[1] == pages[0]


# ------------------------------------------------------------------------------- whole report


def _contents(language: str):
    result = make_result()
    base = build_report_content(make_case(result), [result], {}, language)
    long = copy.deepcopy(base)  # a lesion table over two pages, many warnings, the disclaimer further down
    long.lesions = [copy.copy(row) for row in base.lesions * 25]
    for i, row in enumerate(long.lesions):
        row.number = i + 1
    long.warnings = (base.warnings or ["—"]) * 8 + [base.disclaimer]
    return [base, long]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_report_pages_are_those_of_the_fpdf2_layout(font_dirs, monkeypatch, language):
    """The whole report, laid out by ``pdf_layout`` and by fpdf2's table()/multi_cell() as before:
    the same text at the same places, the same boxes and lines, the same number of pages."""
    tier = "latin" if language == "en" else "cjk"
    for content in _contents(language):
        mine = build_pdf(content, pf.prepared_font(tier).path)
        with monkeypatch.context() as m:
            m.setattr(report_pdf, "draw_table", fpdf2_table)
            m.setattr(report_pdf, "draw_paragraph", fpdf2_paragraph)
            reference = build_pdf(content, pf.prepared_font(tier).path)
        assert mine.pages_count == reference.pages_count
        assert page_ops(mine) == page_ops(reference)
    assert mine.pages_count >= 3  # the long report
