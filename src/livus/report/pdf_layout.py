"""Text wrapping and tables for the PDF report, each cell laid out once (issue 17).

fpdf2's ``FPDF.table()`` renders every cell twice (a dry run for the row heights, then the
drawing), and its line breaker measures the whole current line again for every character it
adds: ~30 ms of the ~45 ms CPU a report took. Here each cell's text is measured once, character
by character, from the font's width table, broken into lines by the same rule as fpdf2's word
wrap (:func:`wrap_lines`), and every line is drawn with ``FPDF.cell``. :func:`draw_table` keeps
the geometry of the ``table()`` calls it replaced (full width between the margins, no padding,
the cell margin ``c_margin`` left and right, text vertically centred in its row, every cell filled
with the current fill colour, a heading row repeated after a page break), so the page looks the
same; ``tests/report/test_pdf_layout.py`` compares both.
"""

from __future__ import annotations

from dataclasses import dataclass

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import TTFFont
from fpdf.line_break import BREAKING_SPACE_SYMBOLS_STR

TOLERANCE_MM = 1e-9  # fpdf2's FloatTolerance: a line is too wide when it exceeds the width by more
# characters fpdf2's line breaker treats specially (other spaces, soft hyphen, no-break space, form
# feed): a text with any of them is broken by fpdf2 itself
SPECIAL_CHARACTERS = frozenset(BREAKING_SPACE_SYMBOLS_STR.replace(" ", "") + "\u00ad\u00a0\u000c\r")

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class TableStyle:
    """How :func:`draw_table` draws a table spanning the page between its margins."""

    col_widths: tuple[float, ...]  # relative column widths (scaled to the width between the margins)
    line_height_mm: float
    all_borders: bool = True  # False: only the horizontal lines between rows
    heading_fill_rgb: RGB | None = None  # set: the first row is a heading, filled so and repeated on a new page


def _fast_path(pdf: FPDF, text: str) -> bool:
    font = pdf.current_font  # a core font's width table is keyed by character, not code point
    return (isinstance(font, TTFFont) and not font.is_symbol
            and not pdf.text_shaping and not pdf.char_spacing and pdf.font_stretching == 100
            and SPECIAL_CHARACTERS.isdisjoint(text))


def wrap_lines(pdf: FPDF, text: str, width_mm: float, padding_mm: float = 0.0) -> list[str]:
    """The lines ``text`` takes in a cell ``width_mm`` wide with ``padding_mm`` left and right, in
    ``pdf``'s current font and size: the lines fpdf2's ``multi_cell`` (word wrap, no markdown)
    breaks it into.

    Why not a library: fpdf2 has this rule (``multi_cell(dry_run=True, output="LINES")``) but
    measures the current line again for every character (quadratic in the line length, ~0.5 ms
    per table cell); Python's ``textwrap`` counts characters, not glyph widths, and neither
    Pillow nor fontTools wrap text to a width. The rule, as fpdf2's: a ``\\n`` ends a line; a
    character that would make the line wider than the cell (less its padding, or its two cell
    margins ``c_margin`` when unpadded) ends it before that character, at the last space of the
    line if there is one (the space is dropped), else in the middle of the word (CJK text has no
    spaces); a space that does not fit is dropped. Texts with characters fpdf2 treats specially
    (other spaces, soft hyphen, no-break space) are broken by fpdf2 itself."""
    if not _fast_path(pdf, text):
        return _fpdf2_lines(pdf, text, width_mm, padding_mm)
    widths = pdf.current_font.cw  # font units per 1000 em, as fpdf2's own width measure reads them
    size_pt, k = pdf.font_size_pt, pdf.k
    max_width = width_mm - padding_mm - padding_mm
    if not padding_mm:
        max_width -= pdf.c_margin
        max_width -= pdf.c_margin
    lines: list[str] = []
    start = i = 0
    line_units = 0  # width of text[start:i] in font units (fpdf2 sums them the same way)
    last_space = -1
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            lines.append(text[start:i])
            start = i = i + 1
            line_units, last_space = 0, -1
            continue
        units = widths[ord(ch)]
        if line_units * size_pt * 0.001 / k + units * size_pt * 0.001 / k - max_width > TOLERANCE_MM:
            if ch == " ":  # the space that does not fit ends the line and is dropped
                lines.append(text[start:i])
                start = i = i + 1
            elif last_space >= 0:  # back to the last space
                lines.append(text[start:last_space])
                start = i = last_space + 1
            elif i == start:  # not even one character fits: fpdf2's own error
                return _fpdf2_lines(pdf, text, width_mm, padding_mm)
            else:  # in the middle of a word
                lines.append(text[start:i])
                start = i
            line_units, last_space = 0, -1
            continue
        if ch == " ":
            last_space = i
        line_units += units
        i += 1
    if line_units:
        lines.append(text[start:])
    return lines


def _fpdf2_lines(pdf: FPDF, text: str, width_mm: float, padding_mm: float) -> list[str]:
    return list(pdf.multi_cell(width_mm, text=text, align="L", padding=padding_mm, dry_run=True, output="LINES"))


def _new_page(pdf: FPDF) -> None:
    """A page break as fpdf2's automatic one (same format, ``x`` kept, ``y`` at the top margin)."""
    x = pdf.x
    pdf.add_page(same=True)
    pdf.x = x


def draw_paragraph(pdf: FPDF, text: str, line_height_mm: float, padding_mm: float = 0.0, box: bool = False) -> None:
    """Draw ``text`` from the current position to the right margin, wrapped by
    :func:`wrap_lines`, and move to the left margin below it: what
    ``pdf.multi_cell(0, line_height_mm, text, border=box, fill=box, padding=padding_mm, align="L",
    new_x="LMARGIN", new_y="NEXT")`` draws, page breaks between lines included (a boxed paragraph
    split by a page break gets a box on each page)."""
    if not text or text.endswith("\n"):  # no line / a trailing line feed: fpdf2's own handling
        pdf.multi_cell(0, line_height_mm, text, border=1 if box else 0, fill=box, padding=padding_mm, align="L",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        return
    h, pad = line_height_mm, padding_mm
    width = pdf.w - pdf.r_margin - pdf.x
    lines = wrap_lines(pdf, text, width, pad)
    inner = width - pad - pad
    pdf.x += pad
    pdf.y += pad
    margin = pdf.c_margin
    if pad:
        pdf.c_margin = 0  # fpdf2 sets text in a padded cell without the cell margin
    try:
        for i, line in enumerate(lines):
            new_page = pdf.will_page_break(h + pad)
            if new_page:
                _new_page(pdf)
                pdf.y += pad
            if box and (i == 0 or new_page):
                fitting = int((pdf.h - pdf.y - (pad + pdf.b_margin)) // h)
                box_h = max(h - i * h, min(fitting, len(lines) - i) * h)
                x1, y1, y2 = pdf.x - pad, pdf.y - pad, pdf.y + box_h + pad
                pdf.rect(x1, y2, pdf.x + inner + pad - x1, -(y2 - y1), style="DF")
            last = i == len(lines) - 1
            pdf.cell(inner, h, line, new_x=XPos.LMARGIN if last else XPos.LEFT, new_y=YPos.NEXT)
    finally:
        pdf.c_margin = margin
    pdf.y += pad


def _text_height(lines: list[str], line_height_mm: float) -> float:
    """Height of a wrapped cell text, summed line by line as fpdf2's ``multi_cell`` does."""
    height = 0.0
    for _ in lines or [""]:
        height += line_height_mm
    return height


def _draw_cell_box(pdf: FPDF, x: float, y: float, w: float, h: float, fill: object | None, borders: str) -> None:
    """Fill (a colour ``set_fill_color`` takes, or ``None``) and borders of one cell: ``borders``
    "all", or some of "T"/"B" (lines only)."""
    if fill is not None:
        previous = pdf.fill_color
        pdf.set_fill_color(fill)
    # the rectangle from its bottom-left corner upwards, as fpdf2's table() draws it: a viewer
    # then anti-aliases the edges that neighbouring cells share exactly as before
    if borders == "all":
        pdf.rect(x, y + h, w, -h, style="DF" if fill is not None else "D")
    elif fill is not None:
        pdf.rect(x, y + h, w, -h, style="F")
    if "B" in borders and borders != "all":
        pdf.line(x, y + h, x + w, y + h)
    if "T" in borders and borders != "all":
        pdf.line(x, y, x + w, y)
    if fill is not None:
        pdf.set_fill_color(previous)


def draw_table(pdf: FPDF, rows: list[list[str]], style: TableStyle) -> None:
    """Draw ``rows`` (cell texts; ``\\n`` breaks a line) as a table from the current ``y``, in the
    current font, across the page between its margins; moves ``y`` below it. A row never breaks
    across pages: one that does not fit goes to the next page (after the heading row again)."""
    if not rows:
        return
    width = pdf.epw
    total = sum(style.col_widths)
    col_widths = [w / total * width for w in style.col_widths]
    left = (pdf.w - width) / 2
    xs = [left]
    for w in col_widths[:-1]:
        xs.append(xs[-1] + w)
    line_h = style.line_height_mm
    body_fill = pdf.font_face().fill_color  # as fpdf2's table: the fill colour when the table starts
    n_head = 1 if style.heading_fill_rgb is not None else 0

    laid: list[tuple[float, list[tuple[float, list[str]] | None]]] = []  # (row height, cells)
    for row in rows:
        cells: list[tuple[float, list[str]] | None] = []
        for text, w in zip(row, col_widths):
            if text:
                lines = wrap_lines(pdf, text, w)
                cells.append((_text_height(lines, line_h), lines))
            else:
                cells.append(None)
        height = max((c[0] for c in cells if c is not None), default=0.0)
        laid.append((height or line_h, cells))

    def draw_row(i: int) -> None:
        height, cells = laid[i]
        y = pdf.y
        if style.all_borders:
            borders = "all"
        else:
            borders = ("T" if i > 0 else "") + ("B" if i < len(rows) - 1 else "")
        cell_fill = style.heading_fill_rgb if i < n_head else body_fill
        for x, w, cell in zip(xs, col_widths, cells):
            _draw_cell_box(pdf, x, y, w, height, cell_fill, borders)
            if cell is None:
                continue
            text_height, lines = cell
            pdf.set_xy(x, y + (height - text_height) / 2)
            for line in lines:
                pdf.cell(w, line_h, line, new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_xy(left, y + height)

    pdf.x = left
    if len(rows) > n_head > 0 and pdf.will_page_break(sum(h for h, _ in laid[:n_head + 1])):
        _new_page(pdf)
    for i, (height, _) in enumerate(laid):
        if pdf.will_page_break(height):
            _new_page(pdf)
            if pdf.will_page_break(height):
                raise ValueError(f"table row {i} is too high to fit on one page")
            if i >= n_head:
                for h in range(n_head):
                    draw_row(h)
        draw_row(i)
    pdf.x = pdf.l_margin
