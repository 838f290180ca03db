"""CEUS line of a lesion in the report (zh/en): terms, the low-confidence capsule value and the
"trained on simulated clips only" note; no line for B-mode lesions."""

from __future__ import annotations

import datetime as dt

from report_factories import make_case, make_result

from livus.report.content import build_report_content, ceus_line
from livus.report.html import render_html

CEUS = {"arterial_phase_hyperenhancement": 0.97, "washout_none": 0.03, "washout_late": 0.95, "washout_early": 0.02,
        "capsule_enhancement": 0.81}
WHEN = dt.datetime(2026, 11, 26, 3, 0)


def _content(language: str, ceus: dict[str, float] | None = CEUS):
    case = make_case(make_result())
    case.tracks[0].ceus_features = dict(ceus or {})
    return build_report_content(case, [make_result()], None, language, generated_at=WHEN)


def test_ceus_line_zh():
    line = ceus_line(CEUS, "zh")
    assert line == ("超声造影（仅用模拟造影数据训练）：动脉期高增强 0.97；廓清：晚期 0.95（无 0.03，早期 0.02）；"
                    "包膜样增强 0.81（低可信度，试验性）")
    c = _content("zh")
    assert c.lesions[0].features[-1] == line
    assert not any("超声造影" in f for f in c.lesions[1].features)  # the other lesion has no CEUS features


def test_ceus_line_en_in_html():
    line = ceus_line(CEUS, "en")
    assert line == ("CEUS (trained on simulated contrast clips only): arterial phase hyperenhancement 0.97; "
                    "washout: late 0.95 (none 0.03, early 0.02); capsule-like enhancement 0.81 (low confidence, experimental)")
    html = render_html(_content("en"))
    assert "arterial phase hyperenhancement 0.97" in html and "low confidence, experimental" in html


def test_no_ceus_features_no_line():
    assert ceus_line({}, "zh") is None
    assert not any("CEUS" in f for row in _content("en", None).lesions for f in row.features)
