"""PDF case report with fpdf2 (pure Python), Chinese-capable through the embedded bundled font.

fpdf2 embeds a subset of the TrueType/OpenType font it is given, so the PDF shows Chinese on
any viewer without installed fonts. Headings use a fill+stroke text mode as bold (the bundled
face has one weight). Layout: A4 portrait, identifiers, lesion table, overlay images,
case assessment, warnings, disclaimer; page numbers and the model in the footer.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace
from PIL import Image

from livus.report.content import ReportContent
from livus.report.fonts import cjk_font_path

FONT_FAMILY = "livus-cjk"
TEXT_RGB = (27, 27, 27)
HEADER_FILL_RGB = (241, 243, 246)
BANNER_FILL_RGB = (255, 244, 214)
WARNING_RGB = (154, 74, 0)
DISCLAIMER_FILL_RGB = (255, 240, 240)
OVERLAY_MAX_WIDTH_MM = 110.0  # single panel; a side-by-side overlay|heatmap pair gets twice this


def _image_size_px(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


class _ReportPDF(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_text = footer_text
        self.add_font(FONT_FAMILY, "", str(cjk_font_path()))
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(15, 15, 15)

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FONT_FAMILY, size=7.5)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, f"{self.footer_text}    {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(*TEXT_RGB)


def _heading(pdf: FPDF, label: str, size: float = 12.5) -> None:
    pdf.ln(2)
    pdf.set_font(FONT_FAMILY, size=size)
    with pdf.local_context(text_mode="FILL_STROKE", line_width=0.18, draw_color=TEXT_RGB):
        pdf.cell(0, size * 0.55, label, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_draw_color(180, 180, 180)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(1.5)
    pdf.set_font(FONT_FAMILY, size=9.5)


def _key_value_table(pdf: FPDF, rows: list[tuple[str, str]], key_width_mm: float = 42) -> None:
    width = pdf.w - pdf.l_margin - pdf.r_margin
    with pdf.table(col_widths=(key_width_mm, width - key_width_mm), first_row_as_headings=False,
                   line_height=5.2, text_align="LEFT", borders_layout="HORIZONTAL_LINES") as table:
        for key, value in rows:
            row = table.row()
            row.cell(key)
            row.cell(value)


def _lesion_table(pdf: FPDF, c: ReportContent) -> None:
    L = c.labels
    headings = ["#", L["image"], L["position"], L["long_axis"], L["short_axis"],
                L["detection_score_short"], L["malignancy_short"], L["features"]]
    pdf.set_font(FONT_FAMILY, size=8.5)
    with pdf.table(col_widths=(6, 26, 33, 16, 16, 15, 19, 49), line_height=4.2, text_align="LEFT",
                   headings_style=FontFace(emphasis="", fill_color=HEADER_FILL_RGB)) as table:
        head = table.row()
        for h in headings:
            head.cell(h)
        for lesion in c.lesions:
            row = table.row()
            row.cell(str(lesion.number))
            row.cell(lesion.image)
            row.cell(f"{lesion.location}\n{L['centre_px']} {lesion.centre_px}")
            row.cell(lesion.long_axis)
            row.cell(lesion.short_axis)
            row.cell(lesion.detection_score)
            row.cell(lesion.malignancy)
            row.cell("\n".join(lesion.features) if lesion.features else "—")
    pdf.set_font(FONT_FAMILY, size=9.5)


def _overlay_images(pdf: FPDF, c: ReportContent) -> None:
    paths: list[tuple[Path, str]] = []
    for lesion in c.lesions:
        if lesion.overlay_path is not None and Path(lesion.overlay_path).is_file():
            if all(p != lesion.overlay_path for p, _ in paths):
                paths.append((Path(lesion.overlay_path), lesion.image))
    if not paths:
        return
    page_width = pdf.w - pdf.l_margin - pdf.r_margin
    for i, (path, caption) in enumerate(paths):
        w_px, h_px = _image_size_px(path)
        width = min(page_width, OVERLAY_MAX_WIDTH_MM * (2 if w_px > 1.5 * h_px else 1))
        height = width * h_px / w_px
        needed = height + 8 + (14 if i == 0 else 0)
        if pdf.get_y() + needed > pdf.h - pdf.b_margin:
            pdf.add_page()
        if i == 0:
            _heading(pdf, c.labels["overlay"])
        pdf.image(str(path), x=pdf.l_margin, w=width, h=height)
        pdf.set_font(FONT_FAMILY, size=8)
        pdf.cell(0, 4.5, caption, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)
        pdf.set_font(FONT_FAMILY, size=9.5)


def build_pdf(c: ReportContent) -> FPDF:
    """The report laid out as an :class:`fpdf.FPDF` document (not yet written)."""
    L = c.labels
    pdf = _ReportPDF(footer_text=f"{L['title']} · {c.case_id} · {L['model']} {c.model}")
    pdf.alias_nb_pages()
    pdf.set_title(f"{L['title']} {c.case_id}")
    pdf.set_creator("livus")
    pdf.add_page()
    pdf.set_text_color(*TEXT_RGB)
    pdf.set_font(FONT_FAMILY, size=17)
    with pdf.local_context(text_mode="FILL_STROKE", line_width=0.25, draw_color=TEXT_RGB):
        pdf.cell(0, 10, L["title"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT_FAMILY, size=10.5)
    pdf.set_fill_color(*BANNER_FILL_RGB)
    pdf.cell(0, 7, "  " + L["decision_support_banner"], fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_fill_color(255, 255, 255)
    pdf.ln(2)
    pdf.set_font(FONT_FAMILY, size=9.5)
    _key_value_table(pdf, [
        (L["case_id"], c.case_id),
        (L["sources"], ", ".join(c.sources)),
        (L["generated_at"], c.generated_at),
        (L["model"], c.model),
        (L["n_lesions"], str(len(c.lesions))),
    ])

    _heading(pdf, L["lesions"])
    if c.lesions:
        _lesion_table(pdf, c)
    else:
        pdf.multi_cell(0, 5, L["no_lesion"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    _heading(pdf, L["assessment"])
    _key_value_table(pdf, [
        (L["risk"], c.risk),
        (L["priority"], c.priority),
        (L["follow_up"], c.follow_up),
        (L["reasons"], "\n".join(c.reasons)),
        (L["background"], "; ".join(f"{k}: {v}" for k, v in c.background)),
    ])

    if c.warnings:
        _heading(pdf, L["warnings"])
        pdf.set_text_color(*WARNING_RGB)
        for w in c.warnings:
            pdf.multi_cell(0, 5, "• " + w, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(*TEXT_RGB)

    pdf.ln(3)
    pdf.set_fill_color(*DISCLAIMER_FILL_RGB)
    pdf.set_draw_color(204, 68, 68)
    pdf.multi_cell(0, 5.2, f"{L['disclaimer_title']}: {c.disclaimer}", border=1, fill=True, padding=2, align="L",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    _overlay_images(pdf, c)
    return pdf


def write_pdf(content: ReportContent, path: Path) -> Path:
    """Write the PDF report to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    build_pdf(content).output(str(path))
    return path
