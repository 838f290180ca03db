"""The PDF report carries the case's assessability row, like the HTML report (issue 15)."""

from __future__ import annotations

from pypdf import PdfReader
from report_factories import make_case, make_result

from livus.infer.case import assess_case
from livus.report import render_report
from livus.types import Assessability


def test_pdf_has_the_assessability_row(tmp_path):
    result = make_result()
    base = make_case(result)
    for language, expected in (("zh", "评估受限（声影遮挡）"), ("en", "shadowing")):
        case = assess_case("case-001", base.tracks, base.patient, language=language,
                           assessability=Assessability("limited", ["shadowing"]))
        out = render_report(case, [result], {}, tmp_path / language, language)
        text = "".join(p.extract_text() for p in PdfReader(str(out["pdf"])).pages).replace("\x00", "")
        html = out["html"].read_text(encoding="utf-8")
        label = html.split('id="assessability">')[1].split("<")[0]
        assert expected in label and label in text.replace("\n", "")
