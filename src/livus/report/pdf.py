"""PDF case report with fpdf2 (pure Python), Chinese-capable through the embedded bundled font.

The PDF embeds its font, so it shows Chinese on any viewer without installed fonts. Headings use
a fill+stroke text mode as bold (the bundled face has one weight). Layout: A4 portrait,
identifiers, lesion table, overlay images, case assessment, warnings, disclaimer; page numbers
and the model in the footer. Tables and paragraphs are laid out by ``livus.report.pdf_layout``
(each cell measured once; the same pages as fpdf2's ``table()``/``multi_cell()``, issue 17).

Fonts (issue 17): fpdf2 subsets the font it is given again for every document (~0.5 s with the
bundled CJK face). A report is laid out with a *prepared* font instead
(``livus.report.fonts.prepared``: the characters livus's wording can produce, cut out of the
bundled font once per installation), whose whole CFF program is embedded as is by
``PreparedFontOutputProducer``, with no subsetting per document. A report with a character
outside it (fpdf2's ``missing_glyphs``) is laid out again with the full bundled font and subset
by fpdf2 as before.
"""

from __future__ import annotations

import struct
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import TTFFont
from fpdf.output import OutputProducer
from PIL import Image

from livus.report.content import ReportContent
from livus.report.fonts import cjk_font_path
from livus.report.fonts import prepared as prepared_fonts
from livus.report.pdf_fonts import font_for_document, is_shared
from livus.report.pdf_layout import TableStyle, draw_paragraph, draw_table

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


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_as_pdf_image(data: bytes) -> dict[str, object] | None:
    """A PNG's own compressed data as a PDF image: PDF's FlateDecode with ``/Predictor 15`` reads
    the PNG's row filters, so the IDAT stream goes into the PDF as is (no decoding, no
    recompression; ~0.1 s per 2000x768 overlay saved). Only for what that covers exactly:
    8-bit grey or RGB, not interlaced, without palette, transparency or ICC profile (``None``
    otherwise; the caller then lets fpdf2 read the image)."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    pos, idat, header = len(PNG_SIGNATURE), [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            return None  # truncated
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
            width, height, depth, colour, compression, filtering, interlace = header
            if depth != 8 or colour not in (0, 2) or compression or filtering or interlace:
                return None
        elif kind == b"IDAT":
            idat.append(body)
        elif kind in (b"PLTE", b"tRNS", b"iCCP"):
            return None
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        return None
    colours = 1 if header[3] == 0 else 3
    return {"data": b"".join(idat), "w": header[0], "h": header[1], "cs": "DeviceGray" if colours == 1 else "DeviceRGB",
            "dpn": colours, "bpc": 8, "f": "FlateDecode", "iccp": None, "inverted": False,
            "dp": f"/Predictor 15 /Colors {colours} /Columns {header[0]}"}


def _preload_png(pdf: FPDF, path: Path) -> tuple[int, int] | None:
    """Put the PNG at ``path`` into ``pdf``'s image cache from its own compressed data (see
    ``png_as_pdf_image``), so that ``pdf.image(str(path))`` reuses it; returns its size in
    pixels, or ``None`` when fpdf2 must read it itself."""
    from fpdf.image_datastructures import RasterImageInfo

    key = str(path)
    images = pdf.image_cache.images
    if key not in images:
        info = png_as_pdf_image(Path(path).read_bytes())
        if info is None:
            return None
        raster = RasterImageInfo(info)
        raster.update({"i": len(images) + 1, "usages": 0, "iccp_i": None})
        images[key] = raster
    return int(images[key]["w"]), int(images[key]["h"])


class _ReportPDF(FPDF):
    def __init__(self, footer_text: str, font_path: Path | None = None, share_font: bool = False) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_text = footer_text
        if share_font:  # only for output through PreparedFontOutputProducer (livus.report.pdf_fonts)
            font_for_document(self, FONT_FAMILY, str(font_path))
        else:
            self.add_font(FONT_FAMILY, "", str(font_path or cjk_font_path()))
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(15, 15, 15)

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FONT_FAMILY, size=7.5)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, f"{self.footer_text}    {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(*TEXT_RGB)


# ----------------------------------------------------------------------------- prepared fonts


def _cmap_stream(system_info: str, name: str, operator: str, entries: list[str]) -> bytes:
    """A CMap program (Adobe TN 5014/5099) with ``entries`` in blocks of at most 100."""
    blocks = "".join(f"{len(entries[i:i + 100])} begin{operator}\n{''.join(entries[i:i + 100])}end{operator}\n"
                     for i in range(0, len(entries), 100))
    return ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            f"/CIDSystemInfo\n{system_info} def\n/CMapName /{name} def\n/CMapType 2 def\n"
            f"1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n{blocks}"
            "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend").encode("latin-1")


def _widths_array(widths: dict[int, int]) -> str:
    """``/W`` of a CIDFont: runs of consecutive CIDs as ``c [w1 w2 ...]``."""
    parts: list[str] = []
    run: list[int] = []
    start = prev = None
    for cid, w in sorted(widths.items()):
        if prev is not None and cid == prev + 1:
            run.append(w)
        else:
            if run:
                parts.append(f"{start} [{' '.join(map(str, run))}]")
            start, run = cid, [w]
        prev = cid
    if run:
        parts.append(f"{start} [{' '.join(map(str, run))}]")
    return "[" + " ".join(parts) + "]"


def _utf16_hex(codepoints: tuple[int, ...]) -> str:
    return "".join(chr(c).encode("utf-16-be").hex().upper() for c in codepoints)


class PreparedFontOutputProducer(OutputProducer):
    """fpdf2's output, except that a font loaded from a prepared file
    (``livus.report.fonts.prepared``) is embedded whole, from its cached CFF program, instead of
    being subset again (that subsetting was ~0.5 s per report). The PDF objects are those of a
    CID-keyed CFF font in fpdf2 (Type0 + CIDFontType0 + FontFile3/CIDFontType0C, an embedded
    code→CID CMap and a ToUnicode CMap), so text stays extractable; other fonts, and every font
    under PDF/A-1 (which wants a CIDSet), go through fpdf2 unchanged."""

    def _add_fonts(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        fonts = self.fpdf.fonts
        compliance = getattr(self.fpdf, "_compliance", None)
        mine = {key: font for key, font in fonts.items()
                if isinstance(font, TTFFont) and not font.color_font and font.is_cff and font.is_cid_keyed
                and prepared_fonts.prepared_for_path(font.ttffile) is not None}
        if not mine or (compliance is not None and getattr(compliance, "profile", None) == "PDFA"):
            if any(is_shared(font) for font in fonts.values() if isinstance(font, TTFFont)):
                raise ValueError("a report font shared between documents cannot be subset by fpdf2")
            return super()._add_fonts(*args, **kwargs)
        registry = list(fonts.items())  # fpdf2's own font registry (a dict), restored below
        for key in mine:
            del fonts[key]
        try:
            objs = super()._add_fonts(*args, **kwargs)
        finally:
            fonts.clear()
            fonts.update(registry)
        for font in sorted(mine.values(), key=lambda f: f.i):
            objs[font.i] = self._add_prepared_font(font, prepared_fonts.prepared_for_path(font.ttffile))
        return objs

    def _add_prepared_font(self, font: TTFFont, prep: prepared_fonts.PreparedFont):  # type: ignore[no-untyped-def]
        from fpdf.output import CIDSystemInfo, PDFFont
        from fpdf.syntax import Name, PDFArray, PDFContentStream, PDFString

        # a subset tag (6 capitals) derived from the embedded program: same font, same name
        tag = "".join(chr(65 + b % 26) for b in prep.cff_digest[:6])
        fontname = f"{tag}+{font.name}"
        registry, ordering, supplement = font.cff_ros or ("Adobe", "Identity", 0)

        type0 = PDFFont(subtype="Type0", base_font=fontname, encoding="Identity-H")
        self._add_pdf_obj(type0, "fonts")
        code_to_cid: dict[int, int] = {}
        widths: dict[int, int] = {}
        to_unicode: list[str] = []
        for glyph, code in font.subset.items():
            if glyph is None:
                continue
            name = glyph.glyph_name
            cid = int(name[3:]) if name.startswith("cid") and name[3:].isdigit() else glyph.glyph_id
            code_to_cid[code] = cid
            widths[cid] = glyph.glyph_width
            if isinstance(glyph.unicode, tuple) and glyph.unicode:
                to_unicode.append(f"<{code:04X}> <{_utf16_hex(glyph.unicode)}>\n")

        cid_font = PDFFont(subtype="CIDFontType0", base_font=fontname, d_w=font.desc.missing_width,
                           w=_widths_array(widths))
        self._add_pdf_obj(cid_font, "fonts")
        type0.descendant_fonts = PDFArray([cid_font])

        unicode_cmap = PDFContentStream(_cmap_stream(
            "<</Registry (Adobe)\n/Ordering (UCS)\n/Supplement 0\n>>", "Adobe-Identity-UCS", "bfchar", to_unicode))
        self._add_pdf_obj(unicode_cmap, "fonts")
        type0.to_unicode = unicode_cmap

        cmap_name = f"{registry}-{ordering}-UCS"
        system_info = f"<< /Registry ({registry}) /Ordering ({ordering}) /Supplement {supplement} >>"
        encoding = PDFContentStream(_cmap_stream(system_info, cmap_name, "cidchar",
                                                 [f"<{code:04X}> {cid}\n" for code, cid in sorted(code_to_cid.items())]))
        encoding.type = Name("CMap")
        encoding.c_map_name = Name(cmap_name)
        encoding.c_i_d_system_info = system_info
        self._add_pdf_obj(encoding, "fonts")
        type0.encoding = encoding

        info = CIDSystemInfo()
        info.registry = PDFString(registry, encrypt=True)
        info.ordering = PDFString(ordering, encrypt=True)
        info.supplement = supplement
        self._add_pdf_obj(info, "fonts")
        cid_font.c_i_d_system_info = info

        descriptor = font.desc
        descriptor.font_name = Name(fontname)
        self._add_pdf_obj(descriptor, "fonts")
        cid_font.font_descriptor = descriptor

        program = PDFContentStream(b"")  # the deflated CFF program, compressed once per process
        program._contents = prep.cff_deflated
        program.filter = Name("FlateDecode")
        program.length = len(prep.cff_deflated)
        program.length1 = len(prep.cff)
        program.subtype = Name("CIDFontType0C")
        self._add_pdf_obj(program, "fonts")
        descriptor.font_file3 = program

        font.subset.pick.cache_clear()
        font.subset.get_glyph.cache_clear()
        if not is_shared(font):
            font.close()
        return type0


def _heading(pdf: FPDF, label: str, size: float = 12.5) -> None:
    pdf.ln(2)
    pdf.set_font(FONT_FAMILY, size=size)
    with pdf.local_context(text_mode="FILL_STROKE", line_width=0.18, draw_color=TEXT_RGB):
        pdf.cell(0, size * 0.55, label, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_draw_color(180, 180, 180)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(1.5)
    pdf.set_font(FONT_FAMILY, size=9.5)


KEY_WIDTH_MM = 42.0
LESION_TABLE = TableStyle(col_widths=(6, 26, 33, 16, 16, 15, 19, 49), line_height_mm=4.2,
                          heading_fill_rgb=HEADER_FILL_RGB)


def _key_value_table(pdf: FPDF, rows: list[tuple[str, str]]) -> None:
    style = TableStyle(col_widths=(KEY_WIDTH_MM, pdf.epw - KEY_WIDTH_MM), line_height_mm=5.2, all_borders=False)
    draw_table(pdf, [[key, value] for key, value in rows], style)


def _lesion_table(pdf: FPDF, c: ReportContent) -> None:
    L = c.labels
    headings = ["#", L["image"], L["position"], L["long_axis"], L["short_axis"],
                L["detection_score_short"], L["malignancy_short"], L["features"]]
    rows = [headings]
    for lesion in c.lesions:
        rows.append([str(lesion.number), lesion.image, f"{lesion.location}\n{L['centre_px']} {lesion.centre_px}",
                     lesion.long_axis, lesion.short_axis, lesion.detection_score, lesion.malignancy,
                     "\n".join(lesion.features) if lesion.features else "—"])
    pdf.set_font(FONT_FAMILY, size=8.5)
    draw_table(pdf, rows, LESION_TABLE)
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
        w_px, h_px = _preload_png(pdf, path) or _image_size_px(path)
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


def build_pdf(c: ReportContent, font_path: Path | None = None, share_font: bool = False) -> FPDF:
    """The report laid out as an :class:`fpdf.FPDF` document (not yet written), in the font at
    ``font_path`` (default: the full bundled CJK font); ``share_font``: with the font parsed once
    per process (``livus.report.pdf_fonts``; a prepared font, written only through
    :class:`PreparedFontOutputProducer`)."""
    L = c.labels
    pdf = _ReportPDF(footer_text=f"{L['title']} · {c.case_id} · {L['model']} {c.model}", font_path=font_path,
                     share_font=share_font)
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
        *c.patient,
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
        *([(L["assessability"], c.assessability)] if c.assessability else []),
        (L["risk"], c.risk),
        (L["priority"], c.priority),
        (L["follow_up"], c.follow_up),
        (L["reasons"], "\n".join(c.reasons)),
        (L["background"], "; ".join(f"{k}: {v}" for k, v in c.background)),
    ])

    if c.lirads:  # ACR US / CEUS LI-RADS v2017 (livus.report.lirads_text)
        _heading(pdf, L["lirads"])
        _key_value_table(pdf, c.lirads)

    if c.warnings:
        _heading(pdf, L["warnings"])
        pdf.set_text_color(*WARNING_RGB)
        for w in c.warnings:
            draw_paragraph(pdf, "• " + w, 5)
        pdf.set_text_color(*TEXT_RGB)

    pdf.ln(3)
    pdf.set_fill_color(*DISCLAIMER_FILL_RGB)
    pdf.set_draw_color(204, 68, 68)
    draw_paragraph(pdf, f"{L['disclaimer_title']}: {c.disclaimer}", 5.2, padding_mm=2, box=True)

    _overlay_images(pdf, c)
    return pdf


def _font_tiers(language: str) -> list[str]:
    """Prepared fonts to try, smallest first: an English report usually needs no hanzi."""
    return ["latin", "cjk"] if language == "en" else ["cjk"]


def prepare_fonts(language: str | None = None) -> None:
    """Load (or build once and cache) the prepared fonts the reports of ``language`` (all when
    ``None``) start with; a process that forks report workers calls this first, so the workers
    inherit them."""
    for tier in (_font_tiers(language) if language else prepared_fonts.TIERS):
        prepared_fonts.prepared_font(tier)


def pdf_bytes(content: ReportContent) -> bytes:
    """The PDF report as bytes: laid out with the smallest prepared font that has every character
    of the report, else with the full bundled font (subset by fpdf2, slower)."""
    for tier in _font_tiers(content.language):
        prep = prepared_fonts.prepared_font(tier)
        if prep is None:  # no cache file could be written anywhere
            break
        pdf = build_pdf(content, prep.path, share_font=True)
        data = pdf.output(output_producer_class=PreparedFontOutputProducer)
        if not any(isinstance(f, TTFFont) and f.missing_glyphs for f in pdf.fonts.values()):
            return bytes(data)
    prepared_fonts.stats["full_font_reports"] += 1
    return bytes(build_pdf(content).output())


def write_pdf(content: ReportContent, path: Path) -> Path:
    """Write the PDF report to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pdf_bytes(content))
    return path
