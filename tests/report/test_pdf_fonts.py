"""Prepared report fonts (issue 17): built once, cached on disk, embedded without per-document
subsetting, and every character a report can print shows the bundled font's own glyph."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from fontTools import subset as ft_subset
from fontTools.cffLib import CFFFontSet
from fontTools.pens.recordingPen import DecomposingRecordingPen
from fontTools.ttLib import TTFont
from pypdf import PdfReader
from report_factories import make_case, make_frame, make_result

from livus.report import render_report
from livus.report.content import build_report_content
from livus.report.fonts import cjk_font_path
from livus.report.fonts import prepared as pf
from livus.report.overlay import draw_overlay, write_overlay_png
from livus.report.pdf import pdf_bytes, png_as_pdf_image, write_pdf


@pytest.fixture
def font_cache(tmp_path, monkeypatch) -> Path:
    """An empty font cache folder and no prepared font in memory (as in a new installation)."""
    d = tmp_path / "cache"
    monkeypatch.setenv("LIVUS_CACHE_DIR", str(d))
    pf.clear_memory_cache()
    for key in pf.stats:
        monkeypatch.setitem(pf.stats, key, 0)
    yield d / "fonts"
    pf.clear_memory_cache()  # the next tests use their own cache folder again


@pytest.fixture
def subset_calls(monkeypatch) -> list[int]:
    """Counts fontTools subsetting runs (what fpdf2 did for every PDF before)."""
    calls: list[int] = []
    original = ft_subset.Subsetter.subset

    def counting(self, font):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(self, font)

    monkeypatch.setattr(ft_subset.Subsetter, "subset", counting)
    return calls


def _content(language: str, overlay: Path | None = None):
    result = make_result()
    overlays = {(result.source, 0): overlay} if overlay else {}
    return build_report_content(make_case(result), [result], overlays, language)


def _text(data: bytes) -> str:
    """Text of all pages, NULs dropped (pypdf's reading of 2-byte ToUnicode entries)."""
    return "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages).replace("\x00", "")


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def _printed_strings(c) -> list[str]:
    """Strings of the content that the PDF prints as they are."""
    out = [c.case_id, c.risk, c.priority, c.follow_up, c.disclaimer, *c.reasons, *c.warnings]
    for row in c.lesions:
        out += [row.image, row.long_axis, row.short_axis, row.detection_score, row.malignancy, *row.features]
    L = c.labels
    out += [L[k] for k in ("title", "case_id", "lesions", "assessment", "risk", "priority", "follow_up")]
    return [s for s in out if s]


def test_second_pdf_does_not_subset_again(font_cache, subset_calls, tmp_path):
    content = _content("zh")
    write_pdf(content, tmp_path / "a.pdf")
    assert pf.stats["built"] == 1 and len(subset_calls) == 1  # the prepared font, once
    assert len(list(font_cache.glob("report-cjk-*.otf"))) == 1
    write_pdf(content, tmp_path / "b.pdf")
    write_pdf(_content("zh"), tmp_path / "c.pdf")
    assert len(subset_calls) == 1 and pf.stats["built"] == 1 and pf.stats["full_font_reports"] == 0
    # a new process: read from the cache file, nothing built or subset
    pf.clear_memory_cache()
    write_pdf(content, tmp_path / "d.pdf")
    assert len(subset_calls) == 1 and pf.stats["built"] == 1 and pf.stats["loaded"] == 1


def test_cache_file_deleted_while_running_is_made_again(font_cache, tmp_path):
    write_pdf(_content("zh"), tmp_path / "a.pdf")
    for f in font_cache.glob("*.otf"):
        f.unlink()
    write_pdf(_content("zh"), tmp_path / "b.pdf")
    assert pf.stats["built"] == 2 and list(font_cache.glob("report-cjk-*.otf"))


def test_cache_key_follows_font_and_charset(font_cache):
    key = pf.cache_key("cjk")
    assert key == pf.cache_key("cjk") and key != pf.cache_key("latin")
    assert pf.tier_codepoints("latin") < pf.tier_codepoints("cjk")
    # the wording of the reports is in the charset: every CJK character of the i18n table
    from livus.report import i18n

    zh = {ord(ch) for ch in Path(i18n.__file__).read_text(encoding="utf-8") if ord(ch) >= pf.CJK_START}
    assert zh and zh <= pf.tier_codepoints("cjk")


def test_broken_cache_file_is_rebuilt(font_cache, tmp_path):
    name = f"report-cjk-{pf.cache_key('cjk')}.otf"
    font_cache.mkdir(parents=True)
    (font_cache / name).write_bytes(b"not a font")
    write_pdf(_content("zh"), tmp_path / "a.pdf")
    assert pf.stats["built"] == 1 and (font_cache / name).stat().st_size > 10_000


@pytest.mark.parametrize("language", ["zh", "en"])
def test_report_text_is_extractable(font_cache, tmp_path, language):
    overlay = write_overlay_png(tmp_path / "ov.png", draw_overlay(make_frame(), make_result()))
    content = _content(language, overlay)
    data = pdf_bytes(content)
    assert pf.stats["full_font_reports"] == 0
    text = _squash(_text(data))
    for s in _printed_strings(content):
        assert _squash(s) in text, s
    if language == "zh":
        hanzi = {ch for s in _printed_strings(content) for ch in s if ord(ch) >= pf.CJK_START}
        assert len(hanzi) > 50 and hanzi <= set(text)
    assert b"/FontFile3" in data and b"/CIDFontType0C" in data


def _embedded_glyphs(data: bytes) -> list[tuple[str, list]]:
    """(character, outline) of every code of every embedded CID font, read back from the PDF:
    ToUnicode (code -> character), the encoding CMap (code -> CID) and the embedded CFF program
    (CID -> outline)."""
    out = []
    reader = PdfReader(io.BytesIO(data))
    fonts = {}
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            fonts[id(font)] = font
    for font in fonts.values():
        cid_font = font["/DescendantFonts"][0].get_object()
        cff_data = cid_font["/FontDescriptor"]["/FontFile3"].get_object().get_data()
        to_char = {int(c, 16): bytes.fromhex(u.decode()).decode("utf-16-be")
                   for c, u in re.findall(rb"<([0-9A-F]{4})> <([0-9A-F]+)>", font["/ToUnicode"].get_object().get_data())}
        to_cid = {int(c, 16): int(cid)
                  for c, cid in re.findall(rb"<([0-9A-F]{4})> (\d+)", font["/Encoding"].get_object().get_data())}
        cff = CFFFontSet()
        cff.decompile(io.BytesIO(cff_data), None)
        top = cff[cff.fontNames[0]]
        assert top.ROS is not None  # CID-keyed
        for code, char in to_char.items():
            if not char.isprintable():  # fpdf2's reserved code 0 (U+0000), never printed
                continue
            pen = DecomposingRecordingPen(top.CharStrings)
            top.CharStrings[f"cid{to_cid[code]:05d}"].draw(pen)
            out.append((char, pen.value))
    return out


def test_every_character_of_the_charset_draws_the_bundled_glyph(font_cache):
    """A report printing every character of the prepared CJK font: no fallback, nothing missing,
    and each character is drawn with the bundled font's own outline (CIDs kept)."""
    content = _content("zh")
    full = TTFont(str(cjk_font_path()))
    cmap, glyphs = full.getBestCmap(), full.getGlyphSet()
    chars = sorted(chr(c) for c in pf.tier_codepoints("cjk") if c in cmap and chr(c).isprintable() and c != 0x20)
    content.warnings = ["".join(chars[i:i + 40]) for i in range(0, len(chars), 40)]
    data = pdf_bytes(content)
    assert pf.stats["full_font_reports"] == 0
    drawn = dict(_embedded_glyphs(data))
    assert set(chars) <= set(drawn)
    for ch in chars:
        pen = DecomposingRecordingPen(glyphs)
        glyphs[cmap[ord(ch)]].draw(pen)
        assert drawn[ch] == pen.value, f"{ch!r} U+{ord(ch):04X}"


def test_character_outside_the_prepared_font_falls_back_to_the_full_font(font_cache):
    cmap = TTFont(str(cjk_font_path())).getBestCmap()
    rare = next(chr(c) for c in range(0x4E00, 0x9FA6) if c in cmap and c not in pf.tier_codepoints("cjk"))
    content = _content("en")
    content.sources = [f"/data/{rare}超声.jpg"]
    data = pdf_bytes(content)
    assert pf.stats["full_font_reports"] == 1
    assert rare in _text(data)
    assert rare in dict(_embedded_glyphs(data))


def test_english_report_uses_the_small_font(font_cache):
    data = pdf_bytes(_content("en"))
    assert pf.stats["full_font_reports"] == 0
    assert list(font_cache.glob("report-latin-*.otf")) and not list(font_cache.glob("report-cjk-*.otf"))
    assert len(data) < 60_000


def test_png_overlay_goes_into_the_pdf_losslessly(tmp_path, font_cache):
    import numpy as np

    rgb = draw_overlay(make_frame(), make_result())
    overlay = write_overlay_png(tmp_path / "ov.png", rgb)
    assert png_as_pdf_image(overlay.read_bytes()) is not None
    data = pdf_bytes(_content("zh", overlay))
    images = [img for page in PdfReader(io.BytesIO(data)).pages for img in page.images]
    assert len(images) == 1
    assert np.array_equal(np.asarray(images[0].image.convert("RGB")), rgb)
    assert png_as_pdf_image(b"GIF89a...") is None


def test_render_report_writes_both_files(tmp_path, font_cache):
    result = make_result()
    out = render_report(make_case(result), [result], {}, tmp_path, "zh")
    assert out["pdf"].read_bytes().startswith(b"%PDF") and "恶性" in _text(out["pdf"].read_bytes())


def _written(content, share_font: bool) -> bytes:
    import datetime as dt

    from livus.report.pdf import PreparedFontOutputProducer, build_pdf

    tier = "latin" if content.language == "en" else "cjk"
    pdf = build_pdf(content, pf.prepared_font(tier).path, share_font=share_font)
    pdf.set_creation_date(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc))
    return bytes(pdf.output(output_producer_class=PreparedFontOutputProducer))


def test_font_parsed_once_gives_the_same_pdf_as_add_font(font_cache):
    """Reports laid out with the process's shared font are byte for byte those laid out with a
    font parsed for the document, also after other reports (no state carried over)."""
    zh, en, zh_rare = _content("zh"), _content("en"), _content("zh")
    cmap = TTFont(str(cjk_font_path())).getBestCmap()
    rare = next(chr(c) for c in range(0x4E00, 0x9FA6) if c in cmap and c not in pf.tier_codepoints("cjk"))
    zh_rare.sources = [f"/data/{rare}.jpg"]
    expected = [_written(c, share_font=False) for c in (zh, en, zh_rare, zh)]
    assert [_written(c, share_font=True) for c in (zh, en, zh_rare, zh)] == expected


def test_shared_font_keeps_missing_characters_per_document(font_cache):
    from fpdf.fonts import TTFFont as FpdfFont

    from livus.report.pdf import build_pdf

    cmap = TTFont(str(cjk_font_path())).getBestCmap()
    rare = next(chr(c) for c in range(0x4E00, 0x9FA6) if c in cmap and c not in pf.tier_codepoints("cjk"))
    content = _content("zh")
    content.sources = [f"/data/{rare}.jpg"]
    path = pf.prepared_font("cjk").path

    def missing(c):
        pdf = build_pdf(c, path, share_font=True)
        return [m for f in pdf.fonts.values() if isinstance(f, FpdfFont) for m in f.missing_glyphs]

    assert missing(content) == [ord(rare)]
    assert missing(_content("zh")) == []


def test_shared_font_covers_every_fpdf2_font_attribute():
    """Each attribute of fpdf2's TTFFont is known as shared (read-only once parsed) or per
    document: a new fpdf2 version with new font state fails here, not in a report."""
    from fpdf.fonts import TTFFont as FpdfFont

    from livus.report.pdf_fonts import PER_DOCUMENT, SHARED

    assert set(FpdfFont.__slots__) == PER_DOCUMENT | SHARED and not PER_DOCUMENT & SHARED
